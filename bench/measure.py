"""One command, measured as a user would feel it: wall time, CPU time and the peak
resident memory of its whole process tree (dbt runs in child processes)."""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05


@dataclass
class Measurement:
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    outcome: str  # "ok", "failed", "timeout" or "memory"
    output_tail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _tree_rss(process: psutil.Process) -> int:
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0  # the command has ended
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_seconds: float | None = None,
    memory_cap_mb: float | None = None,
    log: Path | None = None,
) -> Measurement:
    """Runs the command to its end (or until it passes the time or memory cap, when it is
    killed with its children). CPU time is that of every descendant the command waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, cwd=cwd, stdout=output, stderr=output
    )
    peak = 0
    outcome = ""
    stop = threading.Event()
    process = psutil.Process(child.pid)

    def sample() -> None:
        nonlocal peak, outcome
        while not stop.is_set():
            peak = max(peak, _tree_rss(process))
            if memory_cap_mb and peak > memory_cap_mb * 2**20 and not outcome:
                outcome = "memory"
                _kill_tree(process)
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        returncode = child.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        outcome = outcome or "timeout"
        _kill_tree(process)
        returncode = child.wait()
    stop.set()
    sampler.join()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if log:
        output.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if not outcome:
        outcome = "ok" if returncode == 0 else "failed"
    tail = ""
    if log and outcome != "ok":
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    return Measurement(
        wall_seconds=round(wall, 2),
        cpu_seconds=round(cpu, 2),
        peak_rss_mb=round(peak / 2**20, 1),
        returncode=returncode,
        outcome=outcome,
        output_tail=tail,
    )


def _kill_tree(process: psutil.Process) -> None:
    try:
        members = [*process.children(recursive=True), process]
    except psutil.NoSuchProcess:
        return
    for member in members:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
