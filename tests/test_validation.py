"""The validation worker: suites run in a process of their own give the results they give
in this one, and a worker that dies leaves validation to this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from orchestration.core.settings import PROJECT_ROOT
from orchestration.quality import suites as validation
from orchestration.quality.suites import load_suites, validate, validate_here, validation_worker

PARAMETERS = {"known_segments": ["s"], "as_of": pd.Timestamp("2026-03-01")}


def audience_rows() -> pd.DataFrame:
    """Three rows, two of them bad: a holdout and one without consent."""
    return pd.DataFrame(
        {
            "segment": ["s", "s", "s"],
            "user_id": ["a", "b", "c"],
            "channel": ["email"] * 3,
            "entered_at": pd.to_datetime(["2026-03-01"] * 3),
            "is_holdout": [False, True, False],
            "email_sha256": ["a" * 64, "b" * 64, "c" * 64],
            "is_erased": [False, False, False],
            "has_consent": [True, True, False],
        }
    )


def test_the_validation_worker_fails_the_same_rows_as_this_process():
    suite = load_suites()["audience_exports"]
    here = validate_here(suite, audience_rows(), PARAMETERS)
    with validation_worker():
        worker_pid = validation._worker.submit(os.getpid).result()
        there = validate(suite, audience_rows(), PARAMETERS)
    assert worker_pid != os.getpid()
    assert not there.success
    assert there == here
    assert there.unexpected_count == 2


def test_a_validation_worker_that_died_leaves_validation_to_this_process():
    suite = load_suites()["audience_exports"]
    with validation_worker():
        os.kill(validation._worker.submit(os.getpid).result(), signal.SIGKILL)
        result = validate(suite, audience_rows(), PARAMETERS)
    assert not result.success
    assert result.unexpected_count == 2


def test_the_validation_worker_ends_when_the_run_is_killed(tmp_path):
    """A run killed with SIGKILL runs no cleanup: its worker must notice by itself."""
    script = (
        "import os, time\n"
        "from orchestration.quality import suites as validation\n"
        "with validation.validation_worker():\n"
        "    print(validation._worker.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    try:
        worker = int(run.stdout.readline())
        assert alive(worker)
    finally:
        run.kill()
        run.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A dead child of init not yet reaped is a zombie: it holds nothing.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
