"""The Dagster code location: `dagster dev -m orchestration.definitions`."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import dbt_models
from orchestration.assets.ingestion import landing_files
from orchestration.resources import build_resources
from orchestration.settings import Settings

ALL_ASSETS = [landing_files, dbt_models]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        resources=build_resources(settings or Settings.from_env()),
    )


defs = build_definitions()
