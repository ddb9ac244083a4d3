"""Dagster resources, configured from the same Settings as `segments run`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.activate.audience_files import ensure_export_log
from orchestration.core.settings import Settings, parse_as_of, with_cluster_refit
from orchestration.core.warehouse import connect
from orchestration.ingest.batch_load import ensure_landing_tables
from orchestration.transform.dbt_commands import dbt_cli

_DEFAULTS = Settings()


class PipelineSettings(dg.ConfigurableResource):
    """Where the landing zone, the warehouse and the exports are, the dbt target, the run's as_of
    (empty: the moment the run starts), and overrides of the dbt project's vars as JSON."""

    # Settings' defaults: the same run whether it starts from Dagster or from `segments`.
    landing_dir: str = str(_DEFAULTS.landing_dir)
    warehouse: str = str(_DEFAULTS.warehouse)
    exports_dir: str = str(_DEFAULTS.exports_dir)
    target: str = _DEFAULTS.target
    as_of: str = ""
    full_refresh: bool = _DEFAULTS.full_refresh
    rebuild_history: bool = _DEFAULTS.rebuild_history
    dbt_vars_json: str = "{}"

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineSettings:
        return cls(
            landing_dir=str(settings.landing_dir),
            warehouse=str(settings.warehouse),
            exports_dir=str(settings.exports_dir),
            target=settings.target,
            as_of=settings.as_of.isoformat() if settings.as_of else "",
            full_refresh=settings.full_refresh,
            rebuild_history=settings.rebuild_history,
            dbt_vars_json=json.dumps(settings.dbt_vars, sort_keys=True),
        )

    def to_settings(self) -> Settings:
        return Settings(
            landing_dir=Path(self.landing_dir),
            warehouse=Path(self.warehouse),
            exports_dir=Path(self.exports_dir),
            target=self.target,
            as_of=parse_as_of(self.as_of) if self.as_of else None,
            full_refresh=self.full_refresh,
            rebuild_history=self.rebuild_history,
            dbt_vars=json.loads(self.dbt_vars_json),
        )


class Warehouse(dg.ConfigurableResource):
    """The warehouse file of the settings, as the assets and checks open it. A connection
    lives for one step and is closed after it: DuckDB lets one process write the file, and
    dbt opens it between the steps."""

    settings: PipelineSettings

    @contextmanager
    def connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = connect(Path(self.settings.warehouse), read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


AS_OF_TAG = "segments/as_of"
FULL_REFRESH_TAG = "segments/full_refresh"
REBUILD_HISTORY_TAG = "segments/rebuild_history"
# The stored cluster model is refitted in a run with this tag (the weekly schedule sets it).
REFIT_CLUSTERS_TAG = "segments/refit_clusters"


def run_settings(context, settings: PipelineSettings) -> Settings:
    """The settings of this run with as_of fixed once for all its steps: the run's
    `segments/as_of` tag (schedules set it), else the configured as_of, else the moment
    the run was created."""
    resolved = settings.to_settings()
    tags = context.run.tags
    if tags.get(AS_OF_TAG):
        resolved = resolved.with_overrides(as_of=parse_as_of(tags[AS_OF_TAG]))
    elif resolved.as_of is None:
        record = context.instance.get_run_record_by_id(context.run_id)
        created = record.create_timestamp if record else None
        resolved = resolved.with_overrides(
            as_of=created.astimezone(UTC).replace(tzinfo=None) if created else None
        )
    if tags.get(FULL_REFRESH_TAG) == "true":
        resolved = resolved.with_overrides(full_refresh=True)
    if tags.get(REBUILD_HISTORY_TAG) == "true":
        resolved = resolved.with_overrides(full_refresh=True, rebuild_history=True)
    if tags.get(REFIT_CLUSTERS_TAG) == "true":
        resolved = with_cluster_refit(resolved)
    return resolved.resolved()


def build_resources(settings: Settings) -> dict[str, object]:
    pipeline_settings = PipelineSettings.from_settings(settings)
    return {
        "settings": pipeline_settings,
        "warehouse": Warehouse(settings=pipeline_settings),
        "dbt": dbt_cli(),
    }


def ensure_warehouse(conn: duckdb.DuckDBPyConnection) -> None:
    """The tables the pipeline's own code writes, each defined by the part that owns it:
    dbt reads them as sources from the first run on, before any export was made."""
    ensure_landing_tables(conn)
    ensure_export_log(conn)
