"""Validated audiences become CSV files a marketer downloads."""

import json
import time

import dagster as dg

from orchestration.checks import GUARDED_ASSETS, validation_folder
from orchestration.dbt_project import dbt_project, load_manifest, segment_specs
from orchestration.exports import export_audiences
from orchestration.ingestion import connect
from orchestration.resources import PipelineSettings, run_settings


@dg.asset(
    key=["exports", "audience_files"],
    group_name="exports",
    kinds={"csv"},
    # Downstream of every asset a blocking suite guards: a failed suite stops the export.
    deps=[dg.AssetKey(asset.split("/")) for asset in GUARDED_ASSETS],
    description="One CSV per segment with added/removed deltas and a manifest, published "
    "atomically under <exports>/<as_of>/; exports/latest.json names the newest.",
)
def audience_files(context: dg.AssetExecutionContext, settings: PipelineSettings):
    resolved = run_settings(context, settings)
    started = time.monotonic()
    validation = {
        path.stem: json.loads(path.read_text())
        for path in sorted(validation_folder(resolved).glob("*.json"))
    }
    specs = segment_specs(load_manifest(dbt_project))
    clear = bool(resolved.dbt_vars.get("segments__export_clear_addresses", False))
    conn = connect(resolved.warehouse)
    try:
        result = export_audiences(
            conn, resolved.exports_dir, resolved.as_of, specs, validation, clear_addresses=clear
        )
    finally:
        conn.close()
    table = "\n".join(
        ["| segment | channel | rows | added | removed |", "|---|---|---:|---:|---:|"]
        + [
            f"| {name} | {info['channel']} | {info['rows']} | {info['added']} | {info['removed']} |"
            for name, info in result.segments.items()
        ]
    )
    return dg.MaterializeResult(
        metadata={
            "export_id": result.export_id,
            "folder": dg.MetadataValue.path(str(result.folder)),
            "manifest": dg.MetadataValue.path(str(result.folder / "manifest.json")),
            "previous_export": result.previous_export or "",
            "unchanged_rerun": result.unchanged,
            "rows_exported": sum(info["rows"] for info in result.segments.values()),
            "segments": dg.MetadataValue.md(table),
            "segment_sizes": dg.MetadataValue.json(
                {name: info["rows"] for name, info in result.segments.items()}
            ),
            "elapsed_seconds": round(time.monotonic() - started, 2),
        }
    )
