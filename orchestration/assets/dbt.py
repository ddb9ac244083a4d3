"""The dbt project's models and tests, as Dagster assets and asset checks.

Four dbt node groups: the event-level models (tag:event_level, daily partitions: a backfill
reprocesses the events of its days; an unpartitioned run takes what was ingested since the
last), then every other model but the audiences and measurement, then the audience models
(tag:audience), then, after the audience export, the measurement marts (tag:measurement),
which count what was exported. The audience union finds segment models through dbt's graph
at run time, which dbt cannot order by, so Dagster does: the union depends on every segment
model."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.activate.audience_files import read_thresholds
from orchestration.assets.exports import EXPORT_ASSET
from orchestration.core.targets import DUCKDB, fetch, readable_marts
from orchestration.partitions import daily_partitions
from orchestration.predict.score_marts import (
    read_clusters,
    read_validation,
)
from orchestration.resources import PipelineSettings, Warehouse, run_settings
from orchestration.transform.dbt_commands import (
    dbt_build_args,
    dbt_environment,
    dbt_project,
    environment_variables,
    load_manifest,
    segment_models,
)
from orchestration.transform.dbt_runner import prune_siblings

AUDIENCE_TAG = "tag:audience"
MEASUREMENT_TAG = "tag:measurement"
# What the measurement marts wait for: the export, whose log they read.
# Only the event-level models: what they read stays unpartitioned, which Dagster needs to
# run them outside a partitioned run too. Dagster splits dbt_models around this step.
EVENT_LEVEL = "tag:event_level"
SEGMENT_UNION_MODEL = "int_segment_members"

MANIFEST = load_manifest(dbt_project)
# The segments of this code location, as the graph above was built from the manifest.


class SegmentsTranslator(DagsterDbtTranslator):
    """Keys are <schema>/<name> (raw/events, marts/user_metrics), so dbt sources meet the
    ingestion assets; groups follow the model folders; the segment union depends on every
    segment model."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "reference"

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        if node.get("name") == SEGMENT_UNION_MODEL:
            spec = spec.merge_attributes(
                deps=[self.get_asset_key(model) for model in segment_models(manifest)]
            )
        if "measurement" in node.get("tags", []):
            spec = spec.merge_attributes(deps=[EXPORT_ASSET])
        return spec


TRANSLATOR = SegmentsTranslator()
# The event-level models are partitioned, and Dagster can only attach a check result to a
# partitioned asset inside a partitioned run; their dbt tests still run in `dbt build`
# and fail the step when they fail.
EVENT_TRANSLATOR = SegmentsTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=False)
)


USER_SCORES = dg.AssetKey(["marts", "user_scores"])
SCORE_EVALUATION = dg.AssetKey(["marts", "score_evaluation"])
USER_CLUSTERS = dg.AssetKey(["marts", "user_clusters"])
SEGMENT_THRESHOLDS = dg.AssetKey(["marts", "segment_thresholds"])


def _learned_observations(selected, warehouse: Warehouse):
    """What the learned models and the thresholds came to this run, as metadata on their
    assets: the scores' validation, the cluster model's version and fit date, the
    thresholds' resolved values."""
    wanted = {USER_SCORES, SCORE_EVALUATION, USER_CLUSTERS, SEGMENT_THRESHOLDS} & set(selected)
    if not wanted:
        return
    with warehouse.connection() as conn:
        validation = read_validation(conn) if SCORE_EVALUATION in wanted else None
        clusters = read_clusters(conn) if USER_CLUSTERS in wanted else None
        thresholds = read_thresholds(conn) if SEGMENT_THRESHOLDS in wanted else None
    if validation is not None:
        yield dg.AssetObservation(asset_key=USER_SCORES, metadata=_score_metadata(*validation))
    if clusters is not None and len(clusters):
        yield dg.AssetObservation(asset_key=USER_CLUSTERS, metadata=_cluster_metadata(clusters))
    if thresholds is not None:
        yield dg.AssetObservation(
            asset_key=SEGMENT_THRESHOLDS, metadata={"resolved": dg.MetadataValue.json(thresholds)}
        )


def _cluster_metadata(clusters) -> dict[str, object]:
    first = clusters.iloc[0]
    silhouette = first["silhouette"]
    model = ["model_version", "fitted_at", "k", "silhouette"]
    return {
        "model_version": str(first["model_version"]),
        "fitted_at": str(first["fitted_at"]),
        "k": int(first["k"]),
        "silhouette": None if silhouette != silhouette else float(silhouette),
        "clusters": dg.MetadataValue.md(clusters.drop(columns=model).to_markdown(index=False)),
    }


def _score_metadata(evaluation, calibration) -> dict[str, object]:
    """The scores' validation, on the user_scores asset: AUC, Brier score and base rate per
    score, and the calibration table."""
    metadata: dict[str, object] = {}
    for row in evaluation.to_dict("records"):
        for figure in ("auc", "brier", "validation_base_rate"):
            value = row[figure]
            metadata[f"{row['score']}_{figure}"] = None if value != value else float(value)
        metadata["model_version"] = row["model_version"]
        metadata["validation_rows"] = int(row["validation_rows"])
    metadata["calibration"] = dg.MetadataValue.md(calibration.to_markdown(index=False))
    return metadata


# dbt's target folders of the newest runs are kept for inspection; older ones are removed.
KEEP_RUN_TARGETS = 5


def run_target_path(run_id: str) -> Path:
    """One target folder per Dagster run for its dbt commands' artifacts and logs."""
    return Path(dbt_project.project_dir) / dbt_project.target_path / "runs" / run_id


def _prune_run_targets(current: Path) -> None:
    prune_siblings(current, KEEP_RUN_TARGETS)


def _build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: PipelineSettings,
    warehouse: Warehouse,
):
    resolved = run_settings(context, settings)
    window = None
    if context.has_partition_key or context.has_partition_key_range:
        time_window = context.partition_time_window
        window = (time_window.start.replace(tzinfo=None), time_window.end.replace(tzinfo=None))
    target = run_target_path(context.run.run_id)
    _prune_run_targets(target)
    # What dbt built, which is less than the selection where a model is disabled on the
    # target (the learned models off DuckDB): only those marts are fetched back.
    built = []
    with environment_variables(dbt_environment(resolved)):
        for event in dbt.cli(
            dbt_build_args(resolved, window), context=context, target_path=target
        ).stream():
            if isinstance(event, dg.Output):
                built.append(context.asset_key_for_output(event.output_name))
            elif isinstance(event, dg.AssetMaterialization):
                built.append(event.asset_key)
            yield event
    if resolved.target == DUCKDB:
        yield from _learned_observations(built, warehouse)
    marts = readable_marts(key.path for key in built)
    if resolved.target != DUCKDB and marts:
        with warehouse.connection() as conn:
            fetched = fetch(conn, resolved.target, marts, dbt_environment(resolved))
        context.log.info(
            f"fetched from {resolved.target}: "
            + ", ".join(f"marts.{t} {n:,} rows" for t, n in fetched.items())
        )


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=EVENT_TRANSLATOR,
    select=EVENT_LEVEL,
    partitions_def=daily_partitions,
    name="event_models",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def event_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: PipelineSettings,
    warehouse: Warehouse,
):
    """The event-level incremental models. A backfill of a date range runs once for the
    whole range and reprocesses the events that occurred in it."""
    yield from _build(context, dbt, settings, warehouse)


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=TRANSLATOR,
    exclude=f"{AUDIENCE_TAG} {EVENT_LEVEL} {MEASUREMENT_TAG}",
    name="dbt_models",
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: PipelineSettings,
    warehouse: Warehouse,
):
    """Staging, intermediate, marts and segment models with their tests."""
    yield from _build(context, dbt, settings, warehouse)


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=TRANSLATOR,
    select=AUDIENCE_TAG,
    name="audience_models",
)
def audience_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: PipelineSettings,
    warehouse: Warehouse,
):
    """Segment memberships, their history and the audience rows, with their tests."""
    yield from _build(context, dbt, settings, warehouse)


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=TRANSLATOR,
    select=MEASUREMENT_TAG,
    name="measurement_models",
)
def measurement_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: PipelineSettings,
    warehouse: Warehouse,
):
    """Marts for dashboards and the report: segment sizes, trigger activity, cart recovery
    against the holdout, behavior cohorts; with their tests."""
    yield from _build(context, dbt, settings, warehouse)
