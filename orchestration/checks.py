"""Great Expectations suites as blocking asset checks: a failed suite stops the exports
downstream of the asset it guards, and the run fails."""

from pathlib import Path

import dagster as dg

from orchestration.activate.audience_files import read_segments, stamp, unwritable
from orchestration.core.settings import Settings
from orchestration.quality.suites import (
    Suite,
    load_suites,
    standard_parameters,
    validate,
    write_suite_result,
)
from orchestration.resources import PipelineSettings, Warehouse, run_settings


def validation_folder(resolved: Settings) -> Path:
    """Where the suites' results of one as_of are kept."""
    return resolved.exports_dir / "validation" / stamp(resolved.as_of)


def _suite_check(suite: Suite) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        name=f"gx_{suite.name}",
        asset=dg.AssetKey(suite.asset.split("/")),
        blocking=True,
        description=f"Great Expectations suite {suite.name}: {suite.description}",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, settings: PipelineSettings, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        resolved = run_settings(context, settings)
        with warehouse.connection(read_only=True) as conn:
            frame = conn.execute(suite.query).df()
            # Only a suite about segments reads them: marts guarded before the audience
            # models are built may be checked before marts.segment_settings exists.
            uses_segments = "known_segments" in suite.parameters
            known = [spec.name for spec in read_segments(conn)] if uses_segments else []
        result = validate(suite, frame, standard_parameters(resolved.as_of, known))
        folder = validation_folder(resolved)
        try:
            report = write_suite_result(folder, result)
        except OSError as error:
            raise unwritable(folder, error) from error
        return dg.AssetCheckResult(
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rows_validated": len(frame),
                "expectations_evaluated": result.evaluated,
                "expectations_failed": len(result.failed),
                "unexpected_values": result.unexpected_count,
                "failed": dg.MetadataValue.json(result.failed),
                "report": dg.MetadataValue.path(str(report)),
            },
        )

    return _check


GUARDING_SUITES = [suite for suite in load_suites().values() if suite.asset]
SUITE_CHECKS = [_suite_check(suite) for suite in GUARDING_SUITES]
GUARDED_ASSETS = sorted({suite.asset for suite in GUARDING_SUITES})
