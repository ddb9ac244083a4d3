"""The dbt project's models and tests, as Dagster assets and asset checks."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import (
    dbt_build_args,
    dbt_environment,
    dbt_project,
    ensure_manifest,
)
from orchestration.resources import PipelineSettings

ensure_manifest(dbt_project)


class SegmentsTranslator(DagsterDbtTranslator):
    """Keys are <schema>/<name> (raw/events, marts/user_metrics), so dbt sources meet the
    ingestion assets; groups follow the model folders."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=SegmentsTranslator())
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: PipelineSettings):
    resolved = settings.to_settings().resolved()
    with _environment(dbt_environment(resolved)):
        yield from dbt.cli(dbt_build_args(resolved), context=context).stream()
