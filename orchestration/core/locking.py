"""One run at a time per warehouse.

DuckDB allows one writing process per file, but a run hands the file back and forth
between this process and dbt's, so two runs could interleave and fail half way. A run
therefore holds an exclusive lock on <warehouse>.lock from start to end."""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestration.core.warehouse import WarehouseBusyError


class WarehouseLockedError(WarehouseBusyError):
    """Another run of the pipeline holds the warehouse (its lock file names the process);
    a WarehouseBusyError, whose other case is a foreign process holding the DuckDB file."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def warehouse_lock(warehouse: Path, wait_seconds: float = 0) -> Iterator[None]:
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise WarehouseLockedError(
                        f"another run is using the warehouse {warehouse} ({holder}); "
                        "retry when it finishes, or pass --wait SECONDS to queue"
                    ) from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock
