"""bench/results.json as the Markdown of docs/benchmarks.md: the machine, a table per
size, and the targets with what was measured against each."""

from __future__ import annotations

from pathlib import Path

ANALYSIS = Path(__file__).resolve().parent / "analysis.md"
SCENARIOS = (
    ("full", "pipeline, full refresh (`segments run --full-refresh`, empty warehouse)"),
    ("incremental", "pipeline, one new day on 89 days of history"),
    ("five_minutes", "pipeline, a file of the last five minutes on the rest"),
    ("nothing_new", "pipeline, rerun with nothing new"),
    ("nothing_new_forced", "pipeline, rerun with nothing new, `--force`"),
    ("floor", "floor: the four core marts as hand-written SQL, one DuckDB connection"),
    ("compiled", "the pipeline's compiled models in one DuckDB connection (no orchestration)"),
    ("pandas", "pandas peer: user_metrics and cart_abandonments"),
    ("polars", "Polars peer: user_metrics and cart_abandonments"),
)
# Runs that read every event; the others' work is one day's, five minutes', or nothing.
READS_EVERYTHING = ("full", "floor", "compiled", "pandas", "polars")
PEERS = (("pandas", "pandas"), ("polars", "Polars"))


def _figure(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}{unit}"


def _wall(size: dict, label: str) -> float | None:
    return size["medians"].get(label, {}).get("wall_seconds")


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def size_table(name: str, size: dict) -> list[str]:
    full = _wall(size, "full")
    lines = [
        f"### {name}: {size['events']:,} events ({size['landing_mb']:,.0f} MB of Parquet), "
        f"median of {size['repeats']} run(s), measured {size.get('measured_at', '')}",
        "",
        "| run | wall s | CPU s | peak RSS MB | events/s read | vs floor | vs full refresh |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, title in SCENARIOS:
        figures = size["medians"].get(label)
        if not figures:
            continue
        wall = figures["wall_seconds"]
        if figures["outcome"] != "ok":
            peak = _figure(figures["peak_rss_mb"], "", 0)
            lines.append(f"| {title} | {figures['outcome']} | | {peak} | | | |")
            continue
        rate = size["events"] / wall if wall and label in READS_EVERYTHING else None
        lines.append(
            f"| {title} | {_figure(wall)} | {_figure(figures['cpu_seconds'])} | "
            f"{_figure(figures['peak_rss_mb'], '', 0)} | {_figure(rate, '', 0)} | "
            f"{_figure(_ratio(wall, _wall(size, 'floor')), 'x', 2)} | "
            f"{_figure(_ratio(wall, full), 'x', 2)} |"
        )
    phases = size.get("floor_phases") or {}
    if phases:
        lines += [
            "",
            f"Floor phases: loading the landing files {phases['load_seconds']:.1f} s, "
            f"the four marts {phases['models_seconds']:.1f} s.",
        ]
    return lines + [""]


def _check(value: float | None, limit: float, unit: str, lower_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value <= limit if lower_is_better else value >= limit
    return f"{value:,.2f}{unit}: {'met' if met else 'missed'}"


def targets(sizes: dict) -> list[str]:
    """The targets of the speed work, each judged on the figures of one bench run."""
    rows = []

    def get(name: str) -> dict:
        return sizes.get(name, {"medians": {}})

    def vs_floor(size: dict, label: str) -> float | None:
        return _ratio(_wall(size, label), _wall(size, "floor"))

    demo, ten, hundred = get("1M"), get("10M"), get("100M")
    rows += [
        ("1M (the demo): one new day, at most 10 s", _check(_wall(demo, "incremental"), 10, " s")),
        ("1M: one new day, at most 10x the floor", _check(vs_floor(demo, "incremental"), 10, "x")),
        ("1M: full refresh, at most 15x the floor", _check(vs_floor(demo, "full"), 15, "x")),
        ("10M: full refresh, at most 3x the floor", _check(vs_floor(ten, "full"), 3, "x")),
        ("10M: one new day, at most 1x the floor", _check(vs_floor(ten, "incremental"), 1, "x")),
        (
            "10M: a five-minute file reaches the audience files in at most 15 s",
            _check(_wall(ten, "five_minutes"), 15, " s"),
        ),
        ("100M: full refresh, at most 150 s", _check(_wall(hundred, "full"), 150, " s")),
        (
            "100M: peak memory of the full refresh, at most 6 GB",
            _check(hundred["medians"].get("full", {}).get("peak_rss_mb"), 6144, " MB"),
        ),
        (
            "100M: one new day, at most 10% of the full refresh",
            _check(_ratio(_wall(hundred, "incremental"), _wall(hundred, "full")), 0.10, "x"),
        ),
    ]
    for name, size in sizes.items():
        rows.append(
            (
                f"{name}: rerun with nothing new, at most 5 s",
                _check(_wall(size, "nothing_new"), 5, " s"),
            )
        )
    for name, size in sizes.items():
        for label, peer in PEERS:
            figures = size["medians"].get(label)
            if figures and figures["outcome"] != "ok":
                rows.append(
                    (f"{name}: faster than the {peer} peer", f"{peer}: {figures['outcome']}")
                )
            else:
                rows.append(
                    (
                        f"{name}: faster than the {peer} peer ({peer} / full refresh)",
                        _check(_ratio(_wall(size, label), _wall(size, "full")), 1, "x", False),
                    )
                )
    return ["| target | measured |", "|---|---|"] + [f"| {t} | {m} |" for t, m in rows]


def render_markdown(results: dict) -> str:
    machine = results.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`) from `bench/results.json`; do not edit "
        "by hand: edit `bench/analysis.md` and render it with `python -m bench.report`, or rerun.",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gb', '?')} GB RAM; {machine.get('os', '?')}; "
        f"Python {machine.get('python', '?')}; {versions}. "
        f"DuckDB memory limit {machine.get('duckdb_memory_limit', '?')}.",
        "",
        "Each landing zone is 90 days from `segments generate --seed 42`. Wall and CPU time "
        "are of the whole command (start-up included); CPU time counts every child process; "
        "peak RSS is of the whole process tree (sampled every 50 ms).",
        "",
        "## Targets",
        "",
        *targets(results.get("sizes", {})),
        "",
        "## Results",
        "",
    ]
    for name, size in results.get("sizes", {}).items():
        lines += size_table(name, size)
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().strip(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    # `python -m bench.report`: renders docs/benchmarks.md again from the stored results,
    # after an edit of bench/analysis.md, without measuring anything.
    import json

    from bench.run import DOC, RESULTS

    DOC.write_text(render_markdown(json.loads(RESULTS.read_text())))
    print(f"wrote {DOC}")
