"""The audit log's hash chain detects edited and deleted rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import audit, store

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = store.connect(tmp_path / "a.duckdb")
    with store.transaction(c):
        audit.append(
            c,
            "r1",
            [audit.AuditEvent(f"e{i}", "thing", str(i), {"n": i, "text": "ü"}) for i in range(5)],
            logged_at=AT,
        )
    return c


def test_untouched_chain_verifies(con: duckdb.DuckDBPyConnection) -> None:
    assert audit.verify(con) == []
    assert con.execute("select min(seq), max(seq) from audit_log").fetchone() == (1, 5)


def test_appending_continues_the_chain(con: duckdb.DuckDBPyConnection) -> None:
    with store.transaction(con):
        audit.append(con, "r2", [audit.AuditEvent("x", "thing", "9", {})], logged_at=AT)
    prev = con.execute("select hash from audit_log where seq = 5").fetchone()[0]
    assert con.execute("select prev_hash from audit_log where seq = 6").fetchone()[0] == prev
    assert audit.verify(con) == []


def test_edited_row_is_detected(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""update audit_log set details = '{"n":99}' where seq = 3""")
    assert any("seq 3" in p and "edited" in p for p in audit.verify(con))


def test_deleted_row_is_detected(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("delete from audit_log where seq = 2")
    problems = audit.verify(con)
    assert any("missing" in p for p in problems)


def test_edited_allocation_decision_is_detected_through_its_digest(tmp_path: Path) -> None:
    from backorders.adapters import allocation_store, ingest
    from backorders.demo_data import DemoSpec, generate
    from backorders.settings import load_settings

    spec, s = DemoSpec(seed=2), load_settings()
    generate(tmp_path / "landing", spec)
    c = store.connect(tmp_path / "d.duckdb")
    ingest.ingest_landing(
        c,
        tmp_path / "landing",
        run_id="r1",
        as_of=spec.as_of,
        settings=s,
        now=lambda: AT,
        progress=lambda _: None,
    )
    allocation_store.reconcile(c, as_of=spec.as_of, settings=s)
    allocation_store.allocate(c, run_id="r1", as_of=spec.as_of, settings=s, now=AT)
    assert audit.verify(c) == []
    c.execute(
        "update allocations set qty = qty + 1 where rowid = (select min(rowid) from allocations)"
    )
    assert any("allocation decisions of run r1" in p for p in audit.verify(c))
