"""The landing store's record of what another target was given (orchestration/core/targets.py),
without a warehouse: the PostgreSQL and Spark runs themselves are in test_portability."""

from __future__ import annotations

from datetime import datetime

from orchestration.core.targets import erasure_pending, record_erasure
from orchestration.core.warehouse import connect
from orchestration.resources import ensure_warehouse


def tombstone(conn, digest: str) -> None:
    conn.execute(
        "insert into audit.erased_identities values ($digest, $at)",
        {"digest": digest, "at": datetime(2026, 3, 1)},
    )


def test_an_erasure_the_target_has_not_applied_stays_pending_until_recorded(tmp_path):
    conn = connect(tmp_path / "warehouse.duckdb")
    try:
        ensure_warehouse(conn)
        assert erasure_pending(conn, "postgres") == 0
        tombstone(conn, "a" * 64)
        tombstone(conn, "b" * 64)
        # Pending run after run until erase_identities has run and is recorded: a run that
        # failed in between tries again.
        assert erasure_pending(conn, "postgres") == 2
        assert erasure_pending(conn, "postgres") == 2
        record_erasure(conn, "postgres", 2)
        assert erasure_pending(conn, "postgres") == 0
        assert erasure_pending(conn, "spark") == 2
        tombstone(conn, "c" * 64)
        assert erasure_pending(conn, "postgres") == 3
        # On DuckDB erasure deletes the rows itself.
        assert erasure_pending(conn, "duckdb") == 0
    finally:
        conn.close()
