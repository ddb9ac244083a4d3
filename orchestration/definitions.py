"""The Dagster code location: `dagster dev -m orchestration.definitions`."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import audience_models, dbt_models
from orchestration.assets.exports import audience_files
from orchestration.assets.ingestion import landing_files
from orchestration.checks import SUITE_CHECKS
from orchestration.resources import build_resources
from orchestration.settings import Settings

ALL_ASSETS = [landing_files, dbt_models, audience_models, audience_files]
# The whole graph: what `segments run` executes in process, and what schedules launch.
PIPELINE_JOB = dg.define_asset_job("segments_pipeline", selection=dg.AssetSelection.all())


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=SUITE_CHECKS,
        jobs=[PIPELINE_JOB],
        resources=build_resources(settings or Settings.from_env()),
    )


defs = build_definitions()
