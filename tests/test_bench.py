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


def _size(full: float, floor: float, incremental: float, nothing_new: float, pandas: dict):
    def figures(wall: float) -> dict:
        return {"outcome": "ok", "wall_seconds": wall, "cpu_seconds": wall, "peak_rss_mb": 100.0}

    return {
        "events": 10_000_000,
        "landing_mb": 100,
        "repeats": 3,
        "medians": {
            "full": figures(full),
            "floor": figures(floor),
            "incremental": figures(incremental),
            "nothing_new": figures(nothing_new),
            "pandas": pandas,
        },
    }


def test_targets_are_judged_against_the_figures():
    pandas_slow = {"outcome": "ok", "wall_seconds": 300.0, "cpu_seconds": 1, "peak_rss_mb": 1}
    text = render_markdown({"machine": {}, "sizes": {"10M": _size(25, 20, 2, 0.5, pandas_slow)}})
    assert "| 10M events, full refresh, under 30 s | 25.00 s: met |" in text
    assert "| 10M events, overhead vs floor under 2x | 1.25x: met |" in text
    assert "| 10M: incremental run under 10% of the full refresh | 0.08x: met |" in text
    assert "(pandas / full refresh) | 12.00x: met |" in text

    pandas_oom = {"outcome": "memory", "wall_seconds": None, "cpu_seconds": None, "peak_rss_mb": 1}
    text = render_markdown({"machine": {}, "sizes": {"10M": _size(45, 20, 9, 7, pandas_oom)}})
    assert "| 10M events, full refresh, under 30 s | 45.00 s: missed |" in text
    assert "| 10M events, overhead vs floor under 2x | 2.25x: missed |" in text
    assert "| 10M: rerun with nothing new under 5 s | 7.00 s: missed |" in text
    assert "| 10M: at least 10x faster than pandas | pandas: memory |" in text
