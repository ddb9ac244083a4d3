"""Dagster resources, configured from the same Settings as `segments run`."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import dbt_executable, dbt_project
from orchestration.settings import Settings, parse_as_of


class PipelineSettings(dg.ConfigurableResource):
    """Where the landing zone, the warehouse and the exports are, and the run's as_of
    (empty: the moment the run starts), and overrides of the dbt project's vars as JSON."""

    landing_dir: str = "data/landing"
    warehouse: str = "data/warehouse.duckdb"
    exports_dir: str = "data/exports"
    as_of: str = ""
    full_refresh: bool = False
    dbt_vars_json: str = "{}"

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineSettings:
        return cls(
            landing_dir=str(settings.landing_dir),
            warehouse=str(settings.warehouse),
            exports_dir=str(settings.exports_dir),
            as_of=settings.as_of.isoformat() if settings.as_of else "",
            full_refresh=settings.full_refresh,
            dbt_vars_json=json.dumps(settings.dbt_vars, sort_keys=True),
        )

    def to_settings(self) -> Settings:
        return Settings(
            landing_dir=Path(self.landing_dir),
            warehouse=Path(self.warehouse),
            exports_dir=Path(self.exports_dir),
            as_of=parse_as_of(self.as_of) if self.as_of else None,
            full_refresh=self.full_refresh,
            dbt_vars=json.loads(self.dbt_vars_json),
        )


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "settings": PipelineSettings.from_settings(settings),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
