"""A PostgreSQL server of the test's own: Debian's binaries (`make postgres`), a cluster
initialised in a temporary folder, reachable only through a Unix socket there. Skipped
where PostgreSQL is not installed, unless SEGMENTS_REQUIRE_POSTGRES is set (CI sets it)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DATABASE = "segments"
USER = "segments"


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    port: int

    def environment(self) -> dict[str, str]:
        """What the dbt profile's postgres output reads."""
        return {
            "SEGMENTS_PG_HOST": str(self.socket_dir),
            "SEGMENTS_PG_PORT": str(self.port),
            "SEGMENTS_PG_USER": USER,
            "SEGMENTS_PG_DATABASE": DATABASE,
        }

    def connect(self, database: str = DATABASE):
        import psycopg2

        return psycopg2.connect(
            host=str(self.socket_dir), port=self.port, user=USER, dbname=database
        )


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package made the user postgres.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    binaries = _binaries()
    if binaries is None:
        message = "PostgreSQL is not installed (make postgres)"
        if os.environ.get("SEGMENTS_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's temporary folder, which only its owner may enter.
    root = Path(tempfile.mkdtemp(prefix="segments-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", 55432
    subprocess.run(
        _as_server_user([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", USER]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        _as_server_user(
            [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
             "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(
            [str(binaries / "createdb"), "-h", str(root), "-p", str(port), "-U", USER, DATABASE],
            check=True,
            capture_output=True,
        )
        yield PostgresServer(socket_dir=root, port=port)
    finally:
        subprocess.run(
            _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
