"""`make bench`: the pipeline against the floor and two peers at 1M, 10M and 100M events.

For each size it generates (once, cached under bench/cache/) a 90-day landing zone with
`segments generate`, then measures:
  full         `segments run --full-refresh` on an empty warehouse, all 90 days;
  incremental  one new day lands on a warehouse that holds the 89 before it;
  five_minutes a file of the last five minutes lands on a warehouse that holds the rest;
  nothing_new  the same run again, with nothing new landed (and again with --force);
  floor        the four core marts as hand-written SQL in one DuckDB connection (bench.floor);
  compiled     the pipeline's own compiled models in one connection (bench.compiled_models);
  pandas       user_metrics and cart_abandonments the way an analyst would (bench.pandas_peer);
  polars       the same two marts with Polars (bench.polars_peer).
Each is the median of --repeats runs (one at 100M unless asked); results go to
bench/results.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil

from bench.measure import Measurement, measure
from bench.report import render_markdown

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "cache"
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
BIN = Path(sys.executable).parent

# Users that give about this many events over DAYS with the generator's personas.
SIZES = {"1M": 13_660, "10M": 140_000, "100M": 1_400_000}
DAYS = 90
SEED = 42
HISTORY_AS_OF = "2026-03-31T00:00:00Z"
AS_OF = "2026-04-01T00:00:00Z"
LAST_DAY = "events-2026-03-31"
# The pipeline's DuckDB memory limit in every run (profile and ingestion read it).
MEMORY_LIMIT = "6GB"
# The five-minute file: the last five minutes before AS_OF, landed after the rest.
FIVE_MINUTES_AS_OF = "2026-03-31T23:55:00Z"
FIVE_MINUTES_SIZES = ("1M", "10M")
PEER_TIMEOUT_SECONDS = 1800
PEER_MEMORY_CAP_MB = 16 * 1024


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def landing_for(size: str) -> Path:
    """The cached landing zone of a size, generated when missing or made differently."""
    landing = CACHE / f"landing-{size}"
    recipe = {"users": SIZES[size], "days": DAYS, "seed": SEED}
    marker = landing / ".generated.json"
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return landing
    shutil.rmtree(landing, ignore_errors=True)
    log(f"{size}: generating {SIZES[size]:,} users x {DAYS} days into {landing}")
    generated = measure(
        [
            str(BIN / "segments"),
            "generate",
            "--out",
            str(landing),
            "--users",
            str(SIZES[size]),
            "--days",
            str(DAYS),
            "--seed",
            str(SEED),
        ],
    )
    if generated.outcome != "ok":
        raise SystemExit(f"generating {size} failed: {generated.output_tail}")
    marker.write_text(json.dumps(recipe))
    log(f"{size}: generated in {generated.wall_seconds:.0f} s")
    return landing


def count_events(landing: Path) -> int:
    pattern = str(landing / "events" / "*.parquet")
    return duckdb.connect().execute(f"select count(*) from read_parquet('{pattern}')").fetchone()[0]


def link_landing(source: Path, target: Path, with_last_day: bool) -> None:
    """A landing zone of hard links to the cached files: with or without the last day."""
    shutil.rmtree(target, ignore_errors=True)
    for path in source.rglob("*"):
        if path.is_dir() or path.name.startswith("."):
            continue
        if path.name.startswith(LAST_DAY) and not with_last_day:
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, destination)


def add_last_day(source: Path, target: Path) -> None:
    for path in (source / "events").glob(f"{LAST_DAY}*"):
        os.link(path, target / "events" / path.name)


def split_last_day(source: Path, target: Path, parked: Path, cut: str) -> None:
    """The last day's events as two files: those before `cut`, landed in `target`, and
    the rest, parked outside the landing zone until they land."""
    files = sorted(str(path) for path in (source / "events").glob(f"{LAST_DAY}*"))
    early = target / "events" / f"{LAST_DAY}-until-five-minutes-before.parquet"
    conn = duckdb.connect()
    conn.execute("set TimeZone = 'UTC'")
    events = f"read_parquet({files!r})"
    instant = "cast(occurred_at as timestamptz)"
    for path, condition in ((early, f"{instant} < '{cut}'"), (parked, f"{instant} >= '{cut}'")):
        conn.execute(
            f"copy (select * from {events} where {condition}) to '{path}' (format parquet)"
        )
    conn.close()


def fresh(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class SizeBench:
    """The runs of one size, in a work folder of their own."""

    def __init__(self, size: str, repeats: int):
        self.size = size
        self.repeats = repeats
        self.source = landing_for(size)
        self.work = CACHE / f"work-{size}"
        fresh(self.work)
        self.work.mkdir(parents=True)
        self.landing = self.work / "landing"
        self.warehouse = self.work / "pipeline" / "warehouse.duckdb"
        self.exports = self.work / "pipeline" / "exports"
        # The landing files are complete before each run: no settle time to wait out.
        self.env = {
            "SEGMENTS_DUCKDB_MEMORY_LIMIT": MEMORY_LIMIT,
            "SEGMENTS_LANDING_SETTLE_SECONDS": "0",
        }
        self.runs: dict[str, list[Measurement]] = {}

    def segments_run(self, as_of: str, label: str, *extra: str) -> Measurement:
        command = [
            str(BIN / "segments"),
            "run",
            "--landing",
            str(self.landing),
            "--warehouse",
            str(self.warehouse),
            "--exports",
            str(self.exports),
            "--as-of",
            as_of,
            *extra,
        ]
        return self.record(label, command)

    def record(self, label: str, command: list[str], **limits: float) -> Measurement:
        number = len(self.runs.get(label, [])) + 1
        result = measure(
            command, env=self.env, cwd=ROOT, log=self.work / f"{label}-{number}.log", **limits
        )
        self.runs.setdefault(label, []).append(result)
        log(
            f"{self.size} {label} #{number}: {result.outcome}, {result.wall_seconds:.1f} s wall, "
            f"{result.cpu_seconds:.1f} s CPU, peak {result.peak_rss_mb:,.0f} MB"
        )
        if result.outcome != "ok" and label not in ("pandas",):
            raise SystemExit(f"{self.size} {label} failed:\n{result.output_tail}")
        return result

    def full_refresh(self) -> None:
        link_landing(self.source, self.landing, with_last_day=True)
        for _ in range(self.repeats):
            fresh(self.warehouse.parent)
            self.segments_run(AS_OF, "full", "--full-refresh")

    def compile_models(self) -> Path:
        """The models' SQL as dbt compiles it for a full refresh, for the floor."""
        target = self.work / "compiled"
        subprocess.run(
            [
                str(BIN / "dbt"),
                "compile",
                "--full-refresh",
                "--quiet",
                "--profiles-dir",
                ".",
                "--target-path",
                str(target),
                "--vars",
                # A full refresh of everything, the membership history too (its guard off).
                json.dumps(
                    {
                        "segments__as_of": "2026-04-01 00:00:00.000000",
                        "segments__rebuild_history": True,
                    }
                ),
            ],
            cwd=ROOT / "dbt_project",
            env={**os.environ, **self.env, "SEGMENTS_WAREHOUSE": str(self.warehouse)},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return target / "manifest.json"

    def floor(self) -> None:
        database = self.work / "floor" / "floor.duckdb"
        database.parent.mkdir(exist_ok=True)
        for number in range(self.repeats):
            self.record(
                "floor",
                [
                    str(BIN / "python"),
                    "-m",
                    "bench.floor",
                    "--landing",
                    str(self.source),
                    "--db",
                    str(database),
                    "--as-of",
                    AS_OF,
                    "--memory-limit",
                    MEMORY_LIMIT,
                    "--out",
                    str(self.work / f"floor-phases-{number + 1}.json"),
                ],
            )
        fresh(database)

    def compiled(self, manifest: Path) -> None:
        # The same file name as the pipeline's: compiled SQL names its database.
        database = self.work / "compiled" / self.warehouse.name
        database.parent.mkdir(exist_ok=True)
        for _ in range(self.repeats):
            self.record(
                "compiled",
                [
                    str(BIN / "python"),
                    "-m",
                    "bench.compiled_models",
                    "--landing",
                    str(self.source),
                    "--manifest",
                    str(manifest),
                    "--db",
                    str(database),
                    "--memory-limit",
                    MEMORY_LIMIT,
                ],
            )
        fresh(database)

    def incremental(self) -> None:
        link_landing(self.source, self.landing, with_last_day=False)
        fresh(self.warehouse.parent)
        log(f"{self.size}: building the 89 days of history")
        self.segments_run(HISTORY_AS_OF, "history")
        saved = self.work / "history"
        shutil.copytree(self.warehouse.parent, saved)
        add_last_day(self.source, self.landing)
        for number in range(self.repeats):
            if number:
                fresh(self.warehouse.parent)
                shutil.copytree(saved, self.warehouse.parent)
            self.segments_run(AS_OF, "incremental")
        for _ in range(self.repeats):
            self.segments_run(AS_OF, "nothing_new")
        # What the same rerun costs when it is made to recompute everything.
        for _ in range(self.repeats):
            self.segments_run(AS_OF, "nothing_new_forced", "--force")
        fresh(saved)

    def five_minutes(self) -> None:
        """The last day lands but for its last five minutes; a run as of five minutes
        before AS_OF builds on it; then the five minutes land as one file, and the run
        that reads them is measured: a file's way from the landing zone to the audience."""
        link_landing(self.source, self.landing, with_last_day=False)
        parked = self.work / "last-five-minutes.parquet"
        split_last_day(self.source, self.landing, parked, FIVE_MINUTES_AS_OF)
        fresh(self.warehouse.parent)
        log(f"{self.size}: building the history up to five minutes before as_of")
        self.segments_run(FIVE_MINUTES_AS_OF, "five_minutes_history")
        saved = self.work / "five-minutes-history"
        shutil.copytree(self.warehouse.parent, saved)
        landed = self.landing / "events" / f"{LAST_DAY}-last-five-minutes.parquet"
        for number in range(self.repeats):
            if number:
                fresh(self.warehouse.parent, landed)
                shutil.copytree(saved, self.warehouse.parent)
            shutil.copy(parked, landed)
            self.segments_run(AS_OF, "five_minutes")
        fresh(saved, parked)

    def peer(self, label: str, module: str) -> None:
        for _ in range(self.repeats):
            result = self.record(
                label,
                [str(BIN / "python"), "-m", module, str(self.source), AS_OF],
                timeout_seconds=PEER_TIMEOUT_SECONDS,
                memory_cap_mb=PEER_MEMORY_CAP_MB,
            )
            if result.outcome != "ok":
                break  # out of memory or time: once is enough to say so

    def summary(self) -> dict:
        medians = {}
        for label, runs in self.runs.items():
            ok = [run for run in runs if run.outcome == "ok"]
            medians[label] = {
                "runs": len(runs),
                "outcome": "ok" if len(ok) == len(runs) else runs[-1].outcome,
                "wall_seconds": _median(ok, "wall_seconds"),
                "cpu_seconds": _median(ok, "cpu_seconds"),
                "peak_rss_mb": max((run.peak_rss_mb for run in runs), default=None),
            }
        phases = [
            json.loads(path.read_text()) for path in sorted(self.work.glob("floor-phases-*.json"))
        ]
        return {
            "events": count_events(self.source),
            "landing_mb": round(
                sum(p.stat().st_size for p in self.source.rglob("*") if p.is_file()) / 2**20, 1
            ),
            "repeats": self.repeats,
            "medians": medians,
            "floor_phases": {
                key: statistics.median(phase[key] for phase in phases)
                for key in ("load_seconds", "models_seconds")
            }
            if phases
            else {},
            "runs": {label: [run.as_dict() for run in runs] for label, runs in self.runs.items()},
        }


def _median(runs: list[Measurement], attribute: str) -> float | None:
    values = [getattr(run, attribute) for run in runs]
    return round(statistics.median(values), 2) if values else None


def machine() -> dict:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "pandas", "polars"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing package is just not listed
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "duckdb_memory_limit": MEMORY_LIMIT,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", default="1M,10M,100M", help="comma-separated, of " + ",".join(SIZES)
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--large-repeats", type=int, default=1, help="runs per figure at 100M (default 1)"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to leave out: "
        "full,floor,compiled,incremental,five_minutes,pandas,polars",
    )
    args = parser.parse_args()
    sizes = [size.strip() for size in args.sizes.split(",") if size.strip()]
    unknown = [size for size in sizes if size not in SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"sizes": {}}
    results["machine"] = machine()
    started = time.monotonic()
    for size in sizes:
        repeats = args.large_repeats if size == "100M" else args.repeats
        bench = SizeBench(size, repeats)
        if "full" not in skip:
            bench.full_refresh()
        if "floor" not in skip:
            bench.floor()
        if "compiled" not in skip:
            bench.compiled(bench.compile_models())
        if "incremental" not in skip:
            bench.incremental()
        if "five_minutes" not in skip and size in FIVE_MINUTES_SIZES:
            bench.five_minutes()
        if "pandas" not in skip:
            bench.peer("pandas", "bench.pandas_peer")
        if "polars" not in skip:
            bench.peer("polars", "bench.polars_peer")
        results["sizes"][size] = {
            **bench.summary(),
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(render_markdown(results))
        fresh(bench.work)
    log(f"done in {time.monotonic() - started:.0f} s: {RESULTS}, {DOC}")


if __name__ == "__main__":
    main()
