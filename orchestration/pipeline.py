"""One run of the whole asset graph, in process: what `segments run` executes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from orchestration.definitions import ALL_ASSETS
from orchestration.ingestion import connect
from orchestration.resources import build_resources
from orchestration.settings import Settings


class PipelineError(RuntimeError):
    """A run that did not finish; the message is one line for the user."""


@dataclass
class RunSummary:
    as_of: str
    elapsed_seconds: float
    events_accepted_this_run: int = 0
    events_quarantined_this_run: int = 0
    events_duplicate_this_run: int = 0
    files_rejected_this_run: int = 0
    mart_rows: dict[str, int] = field(default_factory=dict)
    users: int = 0
    abandoned_carts: int = 0


MART_TABLES = ("user_metrics", "cart_abandonments", "customer_rfm", "cohort_retention")


def _failure_reason(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            message = error.message.strip().splitlines()[0] if error else "unknown error"
            cause = error.cause if error else None
            while cause is not None:
                message = cause.message.strip().splitlines()[0]
                cause = cause.cause
            return f"step {event.step_key} failed: {message}"
    return "the run failed"


def run_pipeline(settings: Settings, log_level: str = "WARNING") -> RunSummary:
    settings = settings.resolved()
    started = time.monotonic()
    result = dg.materialize(
        ALL_ASSETS,
        resources=build_resources(settings),
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    if not result.success:
        raise PipelineError(_failure_reason(result))
    return summarize(settings, result, time.monotonic() - started)


def summarize(
    settings: Settings, result: dg.ExecuteInProcessResult | None, elapsed: float
) -> RunSummary:
    summary = RunSummary(as_of=settings.as_of_text, elapsed_seconds=round(elapsed, 1))
    if result is not None:
        for materialization in result.asset_materializations_for_node("landing_files"):
            if materialization.asset_key == dg.AssetKey(["raw", "events"]):
                meta = {key: value.value for key, value in materialization.metadata.items()}
                summary.events_accepted_this_run = int(meta.get("rows_accepted_this_run", 0))
                summary.events_quarantined_this_run = int(meta.get("rows_quarantined", 0))
                summary.events_duplicate_this_run = int(meta.get("rows_duplicate", 0))
                summary.files_rejected_this_run = int(meta.get("files_rejected", 0))
    conn = connect(settings.warehouse, read_only=True)
    try:
        for table in MART_TABLES:
            summary.mart_rows[table] = conn.execute(
                f"select count(*) from marts.{table}"
            ).fetchone()[0]
    finally:
        conn.close()
    summary.users = summary.mart_rows["user_metrics"]
    summary.abandoned_carts = summary.mart_rows["cart_abandonments"]
    return summary


def format_summary(summary: RunSummary, settings: Settings) -> str:
    lines = [
        f"as_of {summary.as_of} UTC, finished in {summary.elapsed_seconds:.1f} s",
        f"events this run: {summary.events_accepted_this_run:,} accepted, "
        f"{summary.events_quarantined_this_run:,} quarantined, "
        f"{summary.events_duplicate_this_run:,} duplicates, "
        f"{summary.files_rejected_this_run:,} files rejected",
        f"users: {summary.users:,}   abandoned carts: {summary.abandoned_carts:,}",
        "marts: " + ", ".join(f"marts.{t} {n:,} rows" for t, n in summary.mart_rows.items()),
        f"warehouse: {settings.warehouse}",
    ]
    return "\n".join(lines)


ProgressCallback = Callable[[str], None]
