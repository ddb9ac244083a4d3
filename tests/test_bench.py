"""The benchmark's own instruments: what they report must be what happened."""

from __future__ import annotations

import sys

from bench.measure import measure
from bench.report import render_markdown

ALLOCATE = "import time; block = bytearray({mb} * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep({sleep})"  # noqa: E501


def test_peak_memory_counts_the_whole_process_tree():
    # The child starts a grandchild that holds 300 MB: only the tree's sum sees it.
    grandchild = ALLOCATE.format(mb=300, sleep=0.5)
    command = [
        sys.executable,
        "-c",
        f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])",
    ]
    result = measure(command)
    assert result.outcome == "ok"
    assert result.peak_rss_mb > 300
    assert result.cpu_seconds > 0


def test_memory_cap_kills_the_tree_and_says_so():
    result = measure([sys.executable, "-c", ALLOCATE.format(mb=400, sleep=30)], memory_cap_mb=200)
    assert result.outcome == "memory"
    assert result.wall_seconds < 20


def test_timeout_kills_and_says_so():
    result = measure([sys.executable, "-c", "import time; time.sleep(30)"], timeout_seconds=1)
    assert result.outcome == "timeout"
    assert result.wall_seconds < 10


def test_failure_keeps_the_end_of_the_output(tmp_path):
    result = measure(
        [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], log=tmp_path / "log"
    )
    assert (result.outcome, result.returncode) == ("failed", 3)
    assert "boom" in result.output_tail


def _figures(wall: float, outcome: str = "ok") -> dict:
    return {"outcome": outcome, "wall_seconds": wall, "cpu_seconds": wall, "peak_rss_mb": 100.0}


def _size(**walls: float) -> dict:
    return {
        "events": 10_000_000,
        "landing_mb": 100,
        "repeats": 3,
        "medians": {label: _figures(wall) for label, wall in walls.items()},
    }


def test_targets_are_judged_against_the_floor_in_the_same_run():
    sizes = {
        "1M": _size(full=14, incremental=9, floor=1, nothing_new=0.1, pandas=20, polars=13),
        "10M": _size(full=31, incremental=9, five_minutes=16, floor=10),
    }
    text = render_markdown({"machine": {}, "sizes": sizes})
    assert "| 1M (the demo): one new day, at most 10 s | 9.00 s: met |" in text
    assert "| 1M: one new day, at most 10x the floor | 9.00x: met |" in text
    assert "| 1M: full refresh, at most 15x the floor | 14.00x: met |" in text
    assert "| 10M: full refresh, at most 3x the floor | 3.10x: missed |" in text
    assert "| 10M: one new day, at most 1x the floor | 0.90x: met |" in text
    assert "five-minute file reaches the audience files in at most 15 s | 16.00 s: missed |" in text
    assert "| 100M: full refresh, at most 150 s | not measured |" in text
    assert "| 1M: faster than the pandas peer (pandas / full refresh) | 1.43x: met |" in text
    assert "| 1M: faster than the Polars peer (Polars / full refresh) | 0.93x: missed |" in text
    # Each row of a size's table shows its ratio to that size's floor.
    assert "| 14.0 | 14.0 | 100 | 714,286 | 14.00x | 1.00x |" in text


def test_a_peer_that_ran_out_of_memory_is_reported_so():
    size = _size(full=10, floor=1)
    size["medians"]["polars"] = _figures(None, outcome="memory")
    text = render_markdown({"machine": {}, "sizes": {"100M": size}})
    assert "| 100M: faster than the Polars peer | Polars: memory |" in text
