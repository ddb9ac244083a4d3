"""One run of the whole asset graph, in process: what `segments run` executes."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import dagster as dg

from orchestration.core.locking import warehouse_lock
from orchestration.core.settings import DUCKDB, Settings
from orchestration.definitions import build_definitions
from orchestration.jobs import pipeline_job
from orchestration.transform.dbt_runner import DBT_ERRORS_MARKER


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
    files_waiting: int = 0
    erasure_requests_this_run: int = 0
    rows_erased_this_run: int = 0
    mart_rows: dict[str, int] = field(default_factory=dict)
    export_folder: str = ""
    segments: dict[str, int] = field(default_factory=dict)
    users: int = 0
    abandoned_carts: int = 0
    report: str = ""
    campaigns: dict[str, dict] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DBT_NODE_ERROR = re.compile(r"^(Runtime|Compilation|Database|Parsing) Error in (\w+ \w+)")


def _reason(message: str) -> str:
    """One line of an error message. When dagster-dbt wrapped a dbt failure, dbt's own
    error: "model int_x: Binder Error: ..." rather than the command that failed."""
    message = _ANSI.sub("", message)
    if DBT_ERRORS_MARKER in message:
        lines = [line.strip() for line in message.split(DBT_ERRORS_MARKER, 1)[1].splitlines()]
        lines = [line for line in lines if line]
        for index, line in enumerate(lines):
            node = _DBT_NODE_ERROR.match(line)
            if node and index + 1 < len(lines):
                return f"{node.group(2)}: {lines[index + 1]}"
        return lines[0] if lines else "dbt failed"
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    first = lines[0]
    # "package.module.ErrorClass: text" -> "text"
    return first.split(": ", 1)[1] if re.match(r"^[\w.]+Error: ", first) else first


def _failure_reason(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            # Dagster wraps the asset's own error; report that one, not the wrapper.
            while (
                error is not None
                and error.cause is not None
                and error.cls_name
                in ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError")
            ):
                error = error.cause
            return f"{event.step_key} failed: {_reason(error.message if error else '')}"
    return "the run failed"


def run_pipeline(
    settings: Settings, log_level: str = "CRITICAL", wait_seconds: float = 0
) -> RunSummary:
    """Runs the asset graph while holding the warehouse's run lock; Dagster's console log
    shows only `log_level` and above (a failure comes back as a one-line PipelineError)."""
    settings = settings.resolved()
    with warehouse_lock(settings.warehouse, wait_seconds):
        return _run_locked(settings, log_level)


def _run_locked(settings: Settings, log_level: str) -> RunSummary:
    started = time.monotonic()
    job = build_definitions(settings).resolve_job_def(pipeline_job.name)
    result = job.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    if not result.success:
        raise PipelineError(_failure_reason(result))
    skipped = [event.step_key for event in result.all_events if event.is_step_skipped]
    if skipped:
        # Dagster skips a step when an asset it reads was not materialized, and calls the
        # run a success; a run that did not export is not one.
        raise PipelineError(
            f"{', '.join(skipped)} skipped: an asset before them was not materialized"
        )
    return summarize(settings, result, time.monotonic() - started)


def summarize(settings: Settings, result: dg.ExecuteInProcessResult, elapsed: float) -> RunSummary:
    """The run's figures, from what its assets recorded: no second look at the warehouse."""
    summary = RunSummary(as_of=settings.as_of_text, elapsed_seconds=round(elapsed, 1))
    metadata = {
        tuple(m.asset_key.path): {key: value.value for key, value in m.metadata.items()}
        for m in (
            event.event_specific_data.materialization
            for event in result.get_asset_materialization_events()
        )
    }
    exported = metadata.get(("exports", "audience_files"), {})
    summary.export_folder = str(exported.get("folder", ""))
    summary.segments = dict(exported.get("segment_sizes", {}))
    summary.mart_rows = dict(exported.get("mart_rows", {}))
    ingested = metadata.get(("raw", "events"), {})
    summary.events_accepted_this_run = int(ingested.get("rows_accepted_this_run", 0))
    summary.events_quarantined_this_run = int(ingested.get("rows_quarantined", 0))
    summary.events_duplicate_this_run = int(ingested.get("rows_duplicate", 0))
    summary.files_rejected_this_run = int(ingested.get("files_rejected", 0))
    summary.files_waiting = len(ingested.get("files_waiting") or [])
    erased = metadata.get(("raw", "erasure_requests"), {})
    summary.erasure_requests_this_run = int(erased.get("rows_accepted_this_run", 0))
    summary.rows_erased_this_run = int(erased.get("rows_erased", 0))
    summary.users = summary.mart_rows.get("user_metrics", 0)
    summary.abandoned_carts = summary.mart_rows.get("cart_abandonments", 0)
    reported = metadata.get(("reports", "audience_report"), {})
    summary.report = str(reported.get("path", ""))
    summary.campaigns = dict(reported.get("campaigns", {}))
    summary.scores = dict(reported.get("scores", {}))
    return summary


def format_summary(summary: RunSummary, settings: Settings) -> str:
    lines = [
        f"as_of {summary.as_of} UTC, finished in {summary.elapsed_seconds:.1f} s",
        f"events this run: {summary.events_accepted_this_run:,} accepted, "
        f"{summary.events_quarantined_this_run:,} quarantined, "
        f"{summary.events_duplicate_this_run:,} duplicates, "
        f"{summary.files_rejected_this_run:,} files rejected"
        + (
            f", {summary.files_waiting:,} files still being written (read by a later run)"
            if summary.files_waiting
            else ""
        ),
        f"erasure requests this run: {summary.erasure_requests_this_run:,}, "
        f"{summary.rows_erased_this_run:,} rows erased from the warehouse",
        f"users: {summary.users:,}   abandoned carts: {summary.abandoned_carts:,}",
        "marts: " + ", ".join(f"marts.{t} {n:,} rows" for t, n in summary.mart_rows.items()),
        f"warehouse: {settings.warehouse}"
        + (
            f" (landing store; dbt builds in {settings.target})"
            if settings.target != DUCKDB
            else ""
        ),
    ]
    if summary.export_folder:
        lines.append(f"audiences: {summary.export_folder}/")
        width = max(len(name) for name in summary.segments) if summary.segments else 0
        for name, rows in summary.segments.items():
            lines.append(f"  {name:<{width}}  {rows:>7,} rows  {summary.export_folder}/{name}.csv")
    for name, figures in summary.campaigns.items():
        if figures.get("uplift") is not None:
            lines.append(
                f"recovery uplift of {name} vs holdout: {figures['uplift'] * 100:+.1f} pp "
                f"(95% CI {figures['uplift_ci_low'] * 100:+.1f} to "
                f"{figures['uplift_ci_high'] * 100:+.1f})"
            )
    for name, figures in summary.scores.items():
        if figures.get("auc") is not None:
            lines.append(
                f"{name}: AUC {figures['auc']:.3f}, Brier {figures['brier']:.3f} "
                f"(validated as of {figures['validation_instant'][:10]}, "
                f"{figures['validation_rows']:,} users)"
            )
    if summary.report:
        lines.append(f"report: {summary.report}")
    return "\n".join(lines)
