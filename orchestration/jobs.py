"""The jobs: subsets of the one asset graph, never a second code path."""

import dagster as dg

# Runs that write the warehouse carry this tag; dagster.yaml limits it to one at a time.
WAREHOUSE_TAGS = {"segments/warehouse": "duckdb"}

# Everything: ingest, models, validation, exports. `segments run` executes this job.
pipeline_job = dg.define_asset_job(
    "segments_pipeline",
    selection=dg.AssetSelection.all(),
    tags=WAREHOUSE_TAGS,
    description="Ingest new landing files, build every model and test, validate, export.",
)

# Hourly: ingestion and the models up to the marts; no validation gate or export.
refresh_job = dg.define_asset_job(
    "segments_refresh",
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.groups("segments", "audiences", "exports", "measurement", "reports"),
    tags=WAREHOUSE_TAGS,
    description="Ingest new landing files and rebuild the marts (no export).",
)
