"""Great Expectations suites, kept as JSON files in expectations/, run on data frames read
from the warehouse (GX 1.x has no working SQL path on DuckDB).

A suite file names the asset it guards and the SQL that reads what is about to ship; a
new file becomes a new blocking check with no Python change. Parameters (`$PARAMETER`)
are filled at run time: as_of, known_segments, and what the caller passes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from orchestration.core.settings import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    asset: str | None  # "schema/table" of the asset it guards
    query: str | None
    expectations: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> Suite:
        raw = json.loads(path.read_text())
        return cls(
            name=raw["name"],
            description=raw.get("description", ""),
            asset=raw.get("asset"),
            query=raw.get("query"),
            expectations=raw["expectations"],
        )

    @property
    def parameters(self) -> set[str]:
        """The names its expectations take as {"$PARAMETER": name}."""
        return {
            value["$PARAMETER"]
            for expectation in self.expectations
            for value in expectation.get("kwargs", {}).values()
            if isinstance(value, dict) and "$PARAMETER" in value
        }


@dataclass
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failed: list[dict[str, Any]]  # one entry per failed expectation

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "success": self.success,
            "expectations_evaluated": self.evaluated,
            "failed_expectations": self.failed,
        }

    @property
    def unexpected_count(self) -> int:
        return sum(int(item.get("unexpected_count") or 0) for item in self.failed)


def load_suites(folder: Path = EXPECTATIONS_DIR) -> dict[str, Suite]:
    return {suite.name: suite for suite in map(Suite.load, sorted(folder.glob("*.json")))}


def _gx():
    # Imported on first use: great_expectations takes seconds to import.
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return gx


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


# Columns whose values are a person's contact data (or its hash): a failed expectation on
# one keeps its counts, never sample values, because results go to Dagster's metadata
# and to report files that are read and shared more widely than the warehouse.
PERSONAL_COLUMNS = frozenset({"email", "phone", "email_sha256", "channel_address"})
WITHHELD = "withheld: personal data"


def _sample(kwargs: dict[str, Any], details: dict[str, Any]) -> list[Any] | str:
    if kwargs.get("column") in PERSONAL_COLUMNS:
        return WITHHELD
    return (details.get("partial_unexpected_list") or [])[:5]


# The process that validates for this one while `validation_worker()` is open.
_worker: ProcessPoolExecutor | None = None


@contextmanager
def validation_worker() -> Iterator[None]:
    """Validates in a process of its own for as long as the block runs. It imports Great
    Expectations (seconds) on the second core while this process ingests and runs dbt,
    neither of them waiting on the other; the suites then run there on the frames this
    process sends, with the same results."""
    global _worker
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
    )
    pool.submit(int)  # a pool starts its process on the first task: now, not at the first suite
    _worker = pool
    try:
        yield
    finally:
        _worker = None
        # Not waited for: the worker exits on its own once it sees the pool closed.
        pool.shutdown(wait=False, cancel_futures=True)


def _start_worker() -> None:
    """Ends the worker with the run's process, however that ends (SIGKILL included): an
    orphan would hold Great Expectations' memory and the run's stdout and stderr."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    _gx()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def validate(suite: Suite, frame: pd.DataFrame, parameters: dict[str, Any]) -> SuiteResult:
    """Runs one suite on a data frame with GX's ValidationDefinition: in the validation
    worker when one is open, else here."""
    global _worker
    if _worker is not None:
        try:
            return _worker.submit(validate_here, suite, frame, parameters).result()
        except BrokenProcessPool:
            # Once broken, a pool refuses every later task: the run's remaining suites
            # go straight to this process.
            _worker = None
            logging.getLogger(__name__).warning(
                "the validation worker stopped; the suites from %s on run in this process",
                suite.name,
            )
    return validate_here(suite, frame, parameters)


def validate_here(suite: Suite, frame: pd.DataFrame, parameters: dict[str, Any]) -> SuiteResult:
    gx = _gx()
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("whole")
    )
    expectations = gx.ExpectationSuite(name=suite.name)
    for item in suite.expectations:
        expectations.add_expectation_configuration(
            ExpectationConfiguration(type=item["type"], kwargs=item["kwargs"])
        )
    expectations = context.suites.add(expectations)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=expectations)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame}, expectation_parameters=parameters
    )
    failed = []
    for item in result.results:
        if item.success:
            continue
        details = item.result or {}
        failed.append(
            _jsonable(
                {
                    "expectation": item.expectation_config.type,
                    "kwargs": {
                        k: v for k, v in item.expectation_config.kwargs.items() if k != "batch_id"
                    },
                    "unexpected_count": details.get("unexpected_count"),
                    "sample": _sample(item.expectation_config.kwargs, details),
                    "observed_value": details.get("observed_value"),
                    "error": (item.exception_info or {}).get("exception_message")
                    if isinstance(item.exception_info, dict)
                    and item.exception_info.get("raised_exception")
                    else None,
                }
            )
        )
    return SuiteResult(
        suite=suite.name,
        success=bool(result.success),
        evaluated=len(result.results),
        failed=failed,
    )


def standard_parameters(as_of: datetime, known_segments: list[str]) -> dict[str, Any]:
    return {"as_of": pd.Timestamp(as_of), "known_segments": sorted(known_segments)}


def write_suite_result(folder: Path, result: SuiteResult) -> Path:
    """Keeps a suite's result as JSON under <exports>/validation/<as_of>/."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.suite}.json"
    path.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return path
