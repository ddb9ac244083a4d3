"""The Dagster code location: `dagster dev -m orchestration.definitions`."""

from __future__ import annotations

import dagster as dg

from orchestration.core.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor with their resources. The modules are
    imported here, not at the top: the dbt assets read the project's manifest (parsing the
    project first when it is stale), which only building the definitions should cost."""
    from orchestration.assets.dbt import (
        audience_models,
        dbt_models,
        event_models,
        measurement_models,
    )
    from orchestration.assets.exports import audience_files
    from orchestration.assets.ingestion import landing_files
    from orchestration.assets.report import audience_report
    from orchestration.checks import SUITE_CHECKS
    from orchestration.jobs import pipeline_job, refresh_job
    from orchestration.resources import build_resources
    from orchestration.schedules import SCHEDULES
    from orchestration.sensors import new_landing_files

    return dg.Definitions(
        assets=[
            landing_files,
            event_models,
            dbt_models,
            audience_models,
            audience_files,
            measurement_models,
            audience_report,
        ],
        asset_checks=SUITE_CHECKS,
        jobs=[pipeline_job, refresh_job],
        schedules=SCHEDULES,
        sensors=[new_landing_files],
        resources=build_resources(settings or Settings.from_env()),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads: settings from the SEGMENTS_* variables."""
    return build_definitions()
