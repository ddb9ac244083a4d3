"""Validated audiences become CSV files a marketer downloads."""

import json
import time

import dagster as dg

from orchestration.activate.audience_files import export_audiences, read_segments, unwritable
from orchestration.checks import GUARDED_ASSETS, validation_folder
from orchestration.core.targets import publish
from orchestration.resources import PipelineSettings, Warehouse, run_settings
from orchestration.transform.dbt_commands import dbt_environment

EXPORT_ASSET = dg.AssetKey(["exports", "audience_files"])


@dg.asset(
    key=EXPORT_ASSET,
    group_name="exports",
    kinds={"csv"},
    # Downstream of every asset a blocking suite guards: a failed suite stops the export.
    deps=[dg.AssetKey(asset.split("/")) for asset in GUARDED_ASSETS],
    description="One CSV per segment with added/removed deltas and a manifest, published "
    "atomically under <exports>/<as_of>/; exports/latest.json names the newest.",
)
def audience_files(
    context: dg.AssetExecutionContext, settings: PipelineSettings, warehouse: Warehouse
):
    resolved = run_settings(context, settings)
    started = time.monotonic()
    validation = {
        path.stem: json.loads(path.read_text())
        for path in sorted(validation_folder(resolved).glob("*.json"))
    }
    clear = bool(resolved.dbt_vars.get("segments__export_clear_addresses", False))
    with warehouse.connection() as conn:
        try:
            result = export_audiences(
                conn,
                resolved.exports_dir,
                resolved.as_of,
                read_segments(conn),
                validation,
                clear_addresses=clear,
            )
        except OSError as error:
            raise unwritable(resolved.exports_dir, error) from error
        # The measurement models, next, read the export log in the target.
        publish(conn, resolved.target, dbt_environment(resolved), tables=("audit.export_log",))
        stats = _segment_stats(conn, resolved.as_of)
        mart_rows = {
            table: conn.execute(f"select count(*) from marts.{table}").fetchone()[0]
            for table in MART_TABLES
        }
    header = (
        "| segment | channel | members | holdout | suppressed | exported | entered | exited "
        "| added | removed |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    for name, info in result.segments.items():
        members, holdout, suppressed, entered, exited = stats.get(name, (0, 0, 0, 0, 0))
        rows.append(
            f"| {name} | {info['channel']} | {members} | {holdout} | {suppressed} | "
            f"{info['rows']} | {entered} | {exited} | {info['added']} | {info['removed']} |"
        )
    table = "\n".join([header, *rows])
    return dg.MaterializeResult(
        metadata={
            "export_id": result.export_id,
            "folder": dg.MetadataValue.path(str(result.folder)),
            "manifest": dg.MetadataValue.path(str(result.folder / "manifest.json")),
            "previous_export": result.previous_export or "",
            "unchanged_rerun": result.unchanged,
            "rows_exported": sum(info["rows"] for info in result.segments.values()),
            "segments": dg.MetadataValue.md(table),
            "mart_rows": dg.MetadataValue.json(mart_rows),
            "segment_sizes": dg.MetadataValue.json(
                {name: info["rows"] for name, info in result.segments.items()}
            ),
            "elapsed_seconds": round(time.monotonic() - started, 2),
        }
    )


MART_TABLES = (
    "user_metrics",
    "cart_abandonments",
    "customer_rfm",
    "cohort_retention",
    "user_traits",
    "segment_memberships",
    "audience_members",
)


def _segment_stats(conn, as_of) -> dict[str, tuple[int, int, int, int, int]]:
    """Per segment: members, holdout, suppressed (other reasons), entered and exited on
    as_of's day. Counts only: no user ids in metadata."""
    rows = conn.execute(
        """
        with members as (
            select segment, count(*) as members,
                count(*) filter (where is_holdout) as holdout,
                count(*) filter (where suppression_reason is not null and not is_holdout)
                    as suppressed
            from marts.audience_members group by segment
        ),
        changes as (
            select segment, entered, exited from marts.segment_membership_changes
            where change_date = cast($as_of as date)
        )
        select members.segment, members.members, members.holdout, members.suppressed,
            coalesce(changes.entered, 0), coalesce(changes.exited, 0)
        from members left join changes using (segment)
        """,
        {"as_of": as_of},
    ).fetchall()
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}
