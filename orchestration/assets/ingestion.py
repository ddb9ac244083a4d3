"""The landing zone becomes the warehouse's raw tables."""

import time

import dagster as dg

from orchestration.core.settings import utc_now
from orchestration.core.targets import erasure_pending, publish, record_erasure
from orchestration.ingest.batch_load import ingest
from orchestration.ingest.erasure import IDENTITY_COLUMNS
from orchestration.resources import PipelineSettings, Warehouse, ensure_warehouse, run_settings
from orchestration.transform.dbt_commands import dbt_environment, dbt_operation
from orchestration.transform.dbt_runner import InProcessDbtCli

RAW_TABLES = ("events", "customers", "erasure_requests")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", table],
            group_name="ingestion",
            kinds={"duckdb", "python"},
            description=f"Accepted {table.replace('_', ' ')} rows from landing/{table}/.",
        )
        for table in RAW_TABLES
    ],
    can_subset=False,
)
def landing_files(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    warehouse: Warehouse,
    dbt: InProcessDbtCli,
):
    """Ingests every new landing file once: typed, de-duplicated, bad rows quarantined;
    then, when dbt builds in another warehouse, publishes the raw tables there."""
    resolved = run_settings(context, settings)
    started = time.monotonic()
    with warehouse.connection() as conn:
        ensure_warehouse(conn)
        report = ingest(conn, resolved.landing_dir, utc_now(), progress=context.log.info)
        table_rows = {
            table: conn.execute(f"select count(*) from raw.{table}").fetchone()[0]
            for table in RAW_TABLES
        }
        for path, error in report.files_rejected:
            context.log.warning(f"rejected {path}: {error}")
        published = publish(conn, resolved.target, dbt_environment(resolved))
        tombstones = erasure_pending(conn, resolved.target)
    if published.rows_copied:
        context.log.info(
            f"published to {resolved.target}: "
            + ", ".join(f"{t} {n:,} rows" for t, n in published.rows_copied.items())
        )
    if tombstones:
        # Recorded only once it ran: an erasure that failed is tried again next run.
        dbt_operation(
            dbt,
            "erase_identities",
            dbt_environment(resolved),
            {"identity_columns": list(IDENTITY_COLUMNS)},
        )
        with warehouse.connection() as conn:
            record_erasure(conn, resolved.target, tombstones)

    elapsed = round(time.monotonic() - started, 2)
    for table in RAW_TABLES:
        metadata: dict[str, object] = {
            "rows_total": dg.MetadataValue.int(table_rows[table]),
            "rows_accepted_this_run": dg.MetadataValue.int(
                int(report.accepted_by_entity.get(table, 0))
            ),
        }
        if table == "events":
            metadata.update(
                batch_id=report.batch_id,
                files_ingested=report.files_ingested,
                files_skipped=report.files_skipped,
                files_rejected=len(report.files_rejected),
                files_waiting=dg.MetadataValue.json(report.files_waiting),
                rows_landed=report.rows_landed,
                rows_quarantined=report.rows_quarantined,
                rows_duplicate=report.rows_duplicate,
                quarantined_by_reason=dg.MetadataValue.json(report.quarantined_by_reason),
                quarantine=dg.MetadataValue.md(
                    "\n".join(
                        ["| reason | rows |", "|---|---:|"]
                        + [f"| {r} | {n} |" for r, n in report.quarantined_by_reason.items()]
                    )
                ),
                rejected_files=dg.MetadataValue.md(
                    "\n".join(
                        ["| file | error |", "|---|---|"]
                        + [f"| {p} | {e.replace('|', '/')} |" for p, e in report.files_rejected]
                    )
                ),
                elapsed_seconds=elapsed,
                target=resolved.target,
                rows_published=dg.MetadataValue.json(published.rows_copied),
            )
        if table == "erasure_requests":
            # Counts only: which identities were erased is what must not be recorded.
            metadata.update(
                identities_erased=report.erasure.identities,
                rows_erased=report.erasure.total_rows_removed,
                rows_erased_by_table=dg.MetadataValue.json(report.erasure.rows_removed),
            )
        yield dg.MaterializeResult(asset_key=["raw", table], metadata=metadata)
