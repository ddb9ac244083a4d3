"""`make bench`: the pipeline against the floor and a pandas peer at 1M, 10M and 100M events.

For each size it generates (once, cached under bench/cache/) a 90-day landing zone with
`segments generate`, then measures:
  full         `segments run --full-refresh` on an empty warehouse, all 90 days;
  incremental  one new day lands on a warehouse that holds the 89 before it;
  nothing_new  the same run again, with nothing new landed (and again with --force);
  floor        the same computation as plain SQL in one DuckDB connection (bench.floor);
  pandas       user_metrics and cart_abandonments the way an analyst would (bench.pandas_peer).
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
PANDAS_TIMEOUT_SECONDS = 1800
PANDAS_MEMORY_CAP_MB = 16 * 1024


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
                json.dumps({"segments__as_of": "2026-04-01 00:00:00.000000"}),
            ],
            cwd=ROOT / "dbt_project",
            env={**os.environ, **self.env, "SEGMENTS_WAREHOUSE": str(self.warehouse)},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return target / "manifest.json"

    def floor(self, manifest: Path) -> None:
        # The same file name as the pipeline's: compiled SQL names its database.
        database = self.work / "floor" / self.warehouse.name
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
                    "--manifest",
                    str(manifest),
                    "--db",
                    str(database),
                    "--memory-limit",
                    MEMORY_LIMIT,
                    "--out",
                    str(self.work / f"floor-phases-{number + 1}.json"),
                ],
            )

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

    def pandas_peer(self) -> None:
        for _ in range(self.repeats):
            result = self.record(
                "pandas",
                [str(BIN / "python"), "-m", "bench.pandas_peer", str(self.source), AS_OF],
                timeout_seconds=PANDAS_TIMEOUT_SECONDS,
                memory_cap_mb=PANDAS_MEMORY_CAP_MB,
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
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "pandas"):
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
        help="comma-separated parts to leave out: full,floor,incremental,pandas",
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
            bench.floor(bench.compile_models())
        if "incremental" not in skip:
            bench.incremental()
        if "pandas" not in skip:
            bench.pandas_peer()
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
