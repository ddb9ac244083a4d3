"""The `segments` command: a thin layer over the library, with one-line errors."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import time
import warnings
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

# The code `segments` exits with, once main() has set it.
_exit_code: int | None = None


def _exit_without_teardown() -> None:
    """Registered before any library can register its own, so it runs after every other
    exit handler: it ends the command without Python's teardown, whose last garbage
    collections walk every object Dagster, dbt and Great Expectations made (1.7 s of a
    16 s run), when everything is written and closed."""
    if _exit_code is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_code)


atexit.register(_exit_without_teardown)

from orchestration.core import run_record  # noqa: E402 - after the exit handler, on purpose
from orchestration.core.settings import (  # noqa: E402
    DUCKDB,
    Settings,
    SettingsError,
    parse_as_of,
    with_cluster_refit,
)

# Great Expectations imports pyspark when it is installed (dbt-spark needs it), and pyspark
# warns on import that it does not fully support pandas 3: nothing the user can act on, and
# stderr is where the command's one-line error goes.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from error


def _as_of(text: str):
    try:
        return parse_as_of(text)
    except SettingsError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segments",
        description="Behavioral Segments: raw behavioral events in, marts and audiences out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser(
        "generate",
        help="write a synthetic landing zone (deterministic for a given seed)",
        description="Write a synthetic landing zone: events/ (one file per day, with late "
        "and duplicate deliveries), customers/ and erasure_requests/.",
    )
    gen.add_argument("--out", type=Path, required=True, help="landing folder to write")
    gen.add_argument("--users", type=int, required=True, help="number of users")
    gen.add_argument("--days", type=int, required=True, help="number of days of activity")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument(
        "--start", type=_date, default=None, help="first day, YYYY-MM-DD (default 2026-01-01)"
    )
    gen.add_argument(
        "--format", dest="file_format", choices=("parquet", "csv", "jsonl"), default="parquet"
    )
    gen.add_argument(
        "--bad-rate",
        type=float,
        default=0.0,
        help="share of event rows to corrupt, each with one typed defect (default 0)",
    )

    run = commands.add_parser(
        "run",
        help="ingest new landing files and build every mart",
        description="Materialize the whole Dagster asset graph in process: ingestion, then "
        "the dbt models and tests. Paths default to the SEGMENTS_* environment variables.",
    )
    run.add_argument("--landing", type=Path, help="landing folder (SEGMENTS_LANDING_DIR)")
    run.add_argument("--warehouse", type=Path, help="DuckDB file (SEGMENTS_WAREHOUSE)")
    run.add_argument("--exports", type=Path, help="exports folder (SEGMENTS_EXPORT_DIR)")
    run.add_argument(
        "--target",
        help="the warehouse dbt builds in: duckdb (the DuckDB file, default), postgres or "
        "spark, outputs of dbt_project/profiles.yml (SEGMENTS_DBT_TARGET)",
    )
    run.add_argument(
        "--as-of",
        type=_as_of,
        help="compute the marts as of this instant, ISO 8601 (SEGMENTS_AS_OF; default now, UTC)",
    )
    run.add_argument(
        "--daily-from",
        type=_date,
        metavar="DATE",
        help="first run as of midnight UTC of DATE, then of each day after it, then as of "
        "--as-of: the runs the daily schedule would have made (a new install catching up, "
        "the demo's history)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every model that events determine from scratch; the membership "
        "history and the export log are kept",
    )
    run.add_argument(
        "--rebuild-history",
        action="store_true",
        help="a full refresh that also discards marts.segment_membership_history: every "
        "current member enters at as_of, so entered_at, added/removed files and cooldowns "
        "start over (the export log is kept)",
    )
    run.add_argument(
        "--refit-clusters",
        action="store_true",
        help="refit the customer clusters (marts.user_cluster_model) as of this run; "
        "otherwise the stored model is applied and refitted once it is a week old",
    )
    run.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="if another run holds the warehouse, wait up to this long (default: fail at once)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run even when nothing changed since the last run of this warehouse (by default "
        "such a rerun prints that run's summary: same as_of, landing files, project and "
        "warehouse)",
    )
    run.add_argument("--verbose", action="store_true", help="show Dagster's and dbt's logs")
    return parser


def _generate(args: argparse.Namespace) -> int:
    from orchestration.demo.generator import DEFAULT_START, GeneratorConfig, generate

    config = GeneratorConfig(
        out=args.out,
        users=args.users,
        days=args.days,
        seed=args.seed,
        start=args.start or DEFAULT_START,
        file_format=args.file_format,
        bad_rate=args.bad_rate,
    )
    started = time.monotonic()
    report = generate(config, progress=lambda message: print(message, flush=True))
    print(
        f"wrote {report.events_written:,} events ({report.bad_rows:,} bad rows), "
        f"{report.customers:,} customers, {report.erasure_requests:,} erasure requests "
        f"in {report.files_written} files to {args.out} "
        f"({time.monotonic() - started:.1f} s)"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = (
        Settings.from_env()
        .with_overrides(
            landing_dir=args.landing,
            warehouse=args.warehouse,
            exports_dir=args.exports,
            target=args.target,
            as_of=args.as_of,
            full_refresh=args.full_refresh or args.rebuild_history or None,
            rebuild_history=args.rebuild_history or None,
        )
        .resolved()
    )
    if args.refit_clusters:
        settings = with_cluster_refit(settings)
    if not settings.landing_dir.is_dir():
        raise SettingsError(f"landing folder {settings.landing_dir} does not exist")
    if not (args.force or args.daily_from):
        last_summary = run_record.unchanged_since_last_run(settings)
        if last_summary is not None:
            print(
                f"segments run: nothing new since the last run as of {settings.as_of_text} UTC "
                "(same landing files, project and warehouse); its summary follows. "
                "--force runs it again.",
            )
            print(last_summary)
            return 0
    from orchestration.quality.suites import validation_worker

    with validation_worker():
        return _run_pipelines(args, settings)


def _run_pipelines(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: Dagster and dbt take seconds to load, the record check none.
    from orchestration.pipeline import format_summary, run_pipeline

    if settings.rebuild_history:
        print(_history_rebuild_warning(settings), file=sys.stderr, flush=True)
    run_record.forget(settings)
    log_level = "INFO" if args.verbose else "CRITICAL"
    earlier = daily_instants(args.daily_from, settings.as_of) if args.daily_from else []
    for number, instant in enumerate(earlier, start=1):
        day = replace(
            settings,
            as_of=instant,
            full_refresh=settings.full_refresh and number == 1,
            rebuild_history=settings.rebuild_history and number == 1,
        )
        print(f"segments run [{number}/{len(earlier) + 1}]: as_of {day.as_of_text} UTC", flush=True)
        summary = run_pipeline(day, log_level=log_level, wait_seconds=args.wait)
        print(
            f"  finished in {summary.elapsed_seconds:.1f} s, "
            f"{sum(summary.segments.values()):,} audience rows exported",
            flush=True,
        )
    if earlier:
        settings = replace(settings, full_refresh=False, rebuild_history=False)
        print(f"segments run [{len(earlier) + 1}/{len(earlier) + 1}]: ", end="")
    else:
        print("segments run: ", end="")
    print(f"landing {settings.landing_dir}, as_of {settings.as_of_text} UTC", flush=True)
    summary = run_pipeline(settings, log_level=log_level, wait_seconds=args.wait)
    text = format_summary(summary, settings)
    if not summary.files_waiting:
        # A file still being written is read by a later run, which must not be answered
        # from this record (the landing zone looks unchanged to it).
        run_record.record(settings, summary.export_folder, text)
    print(text)
    return 0


def _history_rebuild_warning(settings: Settings) -> str:
    """What --rebuild-history discards, with the number of recorded stays when the
    DuckDB file holds them."""
    stays = "every recorded stay"
    if settings.target == DUCKDB and settings.warehouse.exists():
        import duckdb

        try:
            conn = duckdb.connect(str(settings.warehouse), read_only=True)
            try:
                count = conn.execute(
                    "select count(*) from marts.segment_membership_history"
                ).fetchone()[0]
            finally:
                conn.close()
            stays = f"the {count:,} recorded stays"
        except duckdb.Error:
            pass
    return (
        f"segments run: --rebuild-history discards {stays} of "
        "marts.segment_membership_history; current members enter at "
        f"{settings.as_of_text} UTC (the export log is kept)"
    )


def daily_instants(first_day: date, as_of: datetime) -> list[datetime]:
    """Midnight of first_day and of each following day before as_of (naive UTC, as
    Settings holds instants)."""
    instant = datetime(first_day.year, first_day.month, first_day.day)
    if instant >= as_of:
        raise SettingsError(f"--daily-from {first_day} is not before as_of {as_of:%Y-%m-%d %H:%M}")
    instants = []
    while instant < as_of:
        instants.append(instant)
        instant += timedelta(days=1)
    return instants


def main(argv: list[str] | None = None) -> int:
    global _exit_code
    code = _main(argv)
    if argv is None:  # the command itself, not a call from a test
        _exit_code = code
    return code


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    handler = {"generate": _generate, "run": _run}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("segments: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the command's contract is a one-line error
        print(f"segments {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 1


def one_line(error: BaseException) -> str:
    """The most specific line of an error: pydantic's own message rather than its header."""
    details = getattr(error, "errors", None)
    if callable(details):
        try:
            return str(details()[0]["msg"])
        except (TypeError, IndexError, KeyError):
            pass
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
