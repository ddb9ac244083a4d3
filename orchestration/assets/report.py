"""The HTML report beside the exports, rebuilt after every export and measurement run."""

import time

import dagster as dg

from orchestration.assets.exports import EXPORT_ASSET
from orchestration.measure.report_page import write_audience_report
from orchestration.resources import PipelineSettings, Warehouse, run_settings

# The marts the page reads.
REPORT_SOURCES = (
    "audience_members",
    "segment_sizes_daily",
    "cohort_behavior_retention",
    "abandonment_recovery",
    "abandonment_uplift",
)


@dg.asset(
    key=["reports", "audience_report"],
    group_name="reports",
    kinds={"html"},
    deps=[EXPORT_ASSET, *(dg.AssetKey(["marts", mart]) for mart in REPORT_SOURCES)],
    description="<exports>/report.html: the newest audiences with download links, segment "
    "sizes over time, cohort retention and cart recovery against the holdout; one file that "
    "opens from disk.",
)
def audience_report(
    context: dg.AssetExecutionContext, settings: PipelineSettings, warehouse: Warehouse
):
    resolved = run_settings(context, settings)
    started = time.monotonic()
    with warehouse.connection() as conn:
        result = write_audience_report(conn, resolved.exports_dir, resolved.as_of)
    if result is None:
        context.log.info("a newer export exists; the report describes that one and is left as is")
        return dg.MaterializeResult(metadata={"written": False})
    return dg.MaterializeResult(
        metadata={
            "written": True,
            "path": dg.MetadataValue.path(str(result.path)),
            "export_id": result.export_id,
            "charts": result.charts,
            "campaigns": dg.MetadataValue.json(result.campaigns),
            "scores": dg.MetadataValue.json(result.scores),
            "elapsed_seconds": round(time.monotonic() - started, 2),
        }
    )
