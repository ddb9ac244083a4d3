"""The pipeline's own models without orchestration: every model's SQL, as dbt compiled it
for a full refresh, run as CREATE TABLE / VIEW in dependency order in one DuckDB
connection, after a plain typed load of the landing files (de-duplicated on event_id, no
per-row validation or quarantine): no dbt, no Dagster, no tests, no exports. Beside the
floor (bench/floor.py) it tells how much of a run is the models' own SQL.

    python -m bench.compiled_models --landing DIR --manifest target/manifest.json --db FILE
"""

from __future__ import annotations

import argparse
import json
import time
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb

from orchestration.resources import ensure_warehouse

# Landing files to raw tables, with the columns and types ingestion gives them.
_LOAD_SQL = """
insert into raw.events
select event_id, event_type, timezone('UTC', cast(occurred_at as timestamptz)), user_id,
    anonymous_id, session_id, product_id, category, price, revenue, quantity, order_id,
    duration_seconds, properties, filename, file_row_number + 1, 1, $loaded_at
from read_parquet($files, filename = true, file_row_number = true)
qualify row_number() over (partition by event_id order by filename, file_row_number) = 1;
insert into raw.customers
select customer_id, email, phone, timezone('UTC', cast(signed_up_at as timestamptz)), country,
    coalesce(consent_email, false), coalesce(consent_sms, false), coalesce(consent_push, false),
    filename, file_row_number + 1, 1, $loaded_at
from read_parquet($files, filename = true, file_row_number = true);
insert into raw.erasure_requests
select user_id, timezone('UTC', cast(requested_at as timestamptz)), filename,
    file_row_number + 1, 1, $loaded_at
from read_parquet($files, filename = true, file_row_number = true);
"""


def model_order(manifest: dict) -> list[dict]:
    """Seeds and models, each after everything it reads. The audience models find the
    segment models through dbt's graph, not ref(), so they come after every segment model
    (as the pipeline orders them)."""
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }
    segments = [
        uid for uid, node in nodes.items() if (node["config"].get("meta") or {}).get("segment")
    ]
    graph = {
        uid: [dep for dep in node.get("depends_on", {}).get("nodes", []) if dep in nodes]
        + (segments if "audience" in node["tags"] else [])
        for uid, node in nodes.items()
    }
    return [nodes[uid] for uid in TopologicalSorter(graph).static_order()]


def _statement(node: dict) -> str | None:
    relation = node["relation_name"]
    if node["resource_type"] == "seed":
        path = Path(node["root_path"]) / node["original_file_path"]
        return f"create or replace table {relation} as select * from read_csv('{path}')"
    materialized = node["config"]["materialized"]
    if materialized == "ephemeral":
        return None  # inlined into the models that read it
    kind = "view" if materialized == "view" else "table"
    return f"create or replace {kind} {relation} as {node['compiled_code']}"


def run_floor(landing: Path, manifest_path: Path, db: Path, memory_limit: str) -> dict:
    manifest = json.loads(manifest_path.read_text())
    db.unlink(missing_ok=True)
    started = time.monotonic()
    conn = duckdb.connect(str(db))
    conn.execute(f"set TimeZone = 'UTC'; set threads = 2; set memory_limit = '{memory_limit}'")
    ensure_warehouse(conn)
    for statement in _LOAD_SQL.split(";")[:-1]:
        entity = statement.split("raw.", 1)[1].split()[0]
        conn.execute(
            statement,
            {"files": str(landing / entity / "*.parquet"), "loaded_at": "2000-01-01 00:00:00"},
        )
    loaded = time.monotonic()
    timings = {}
    for node in model_order(manifest):
        statement = _statement(node)
        if statement is None:
            continue
        conn.execute(f"create schema if not exists {node['schema']}")
        node_started = time.monotonic()
        conn.execute(statement)
        timings[node["name"]] = round(time.monotonic() - node_started, 3)
    conn.close()
    finished = time.monotonic()
    return {
        "load_seconds": round(loaded - started, 2),
        "models_seconds": round(finished - loaded, 2),
        "total_seconds": round(finished - started, 2),
        "model_seconds": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compiled_models", description=__doc__)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--out", type=Path, help="write the phase timings here as JSON")
    args = parser.parse_args()
    result = run_floor(args.landing, args.manifest, args.db, args.memory_limit)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
