"""The audit log's hash chain detects edited and deleted rows."""

from __future__ import annotations

import json
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


def _allocated(tmp_path: Path, seed: int) -> duckdb.DuckDBPyConnection:
    """A demo world ingested and allocated by run r1."""
    from backorders.adapters import allocation_store, ingest
    from backorders.devtools.demo_data import DemoSpec, generate
    from backorders.settings import load_settings

    spec, s = DemoSpec(seed=seed), load_settings()
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
    return c


def test_edited_allocation_decision_is_detected_through_its_digest(tmp_path: Path) -> None:
    c = _allocated(tmp_path, seed=2)
    assert audit.verify(c) == []
    # allocations is a view (migration 009): tamper with the table behind it
    c.execute(
        "update allocation_rows set qty = qty + 1 "
        "where rowid = (select min(rowid) from allocation_rows)"
    )
    assert any("allocation decisions of run r1" in p for p in audit.verify(c))


def _queued(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A demo world allocated and its messages queued by run r1."""
    from backorders.adapters import outbox

    c = _allocated(tmp_path, seed=4)
    outbox.queue_messages(c, run_id="r1", now=AT, dry_run=False)
    return c


def test_queued_messages_are_audited_as_one_digest_that_sending_does_not_break(
    tmp_path: Path,
) -> None:
    c = _queued(tmp_path)
    queued = c.execute(
        "select count(*) from audit_log where event = 'messages_queued' and entity_id = 'r1'"
    ).fetchone()
    per_message = c.execute(
        "select count(*) from audit_log where event in ('message_queued', 'message_suppressed')"
    ).fetchone()
    assert (queued, per_message) == ((1,), (0,))
    # what sending changes (status, attempts, ids, errors) is not an edit of what was queued
    c.execute(
        "update outbox set status = 'sent', attempts = 1, provider_message_id = 'x', "
        "sent_at = $t where status = 'pending'",
        {"t": AT},
    )
    c.execute(
        "update outbox set status = 'failed', failure = 'transient', last_error = 'e' "
        "where rowid = (select min(rowid) from outbox where status = 'sent')"
    )
    assert audit.verify(c) == []


@pytest.mark.parametrize(
    "edit",
    [
        "update outbox set kind = 'delay_apology' where rowid = (select min(rowid) from outbox)",
        'update outbox set state = \'{"condition": "ready", "promised_date": null}\' '
        "where rowid = (select max(rowid) from outbox)",
        "update outbox set status = 'pending', last_error = null "
        "where rowid = (select min(rowid) from outbox where status = 'suppressed')",
        "delete from outbox where rowid = (select min(rowid) from outbox)",
        "update outbox_emails set to_email = 'someone@else.test' "
        "where rowid = (select min(rowid) from outbox_emails)",
    ],
    ids=["kind", "state", "suppressed-to-pending", "deleted", "email-address"],
)
def test_edited_queued_message_is_detected_through_its_digest(tmp_path: Path, edit: str) -> None:
    c = _queued(tmp_path)
    assert audit.verify(c) == []
    c.execute(edit)
    assert any("messages queued by run r1" in p for p in audit.verify(c))


# ids as a feed may carry them: quotes, backslashes, non-ASCII, emoji, control characters
# (DuckDB and Python escape some of those differently: the chain must not notice)
_AWKWARD = ["O1", 'q"uote\\back/slash', "ünïcödé", "emoji 😀", "ctl\x0b\x1f\x01", "nl\n\t\r"]


def _stage(con: duckdb.DuckDBPyConnection, events: list[audit.AuditEvent]) -> None:
    """Stage these events in audit_staged, their details as `append` writes them."""
    con.execute(
        "create or replace temp table audit_staged (ord int, event varchar, entity varchar, "
        "entity_id varchar, details json)"
    )
    for i, ev in enumerate(events, start=1):
        text = json.dumps(ev.details, sort_keys=True, separators=(",", ":"), default=str)
        con.execute(
            "insert into audit_staged values (?, ?, ?, ?, ?::json)",
            [i, ev.event, ev.entity, ev.entity_id, text],
        )


def test_staged_rows_are_the_rows_append_writes(tmp_path: Path) -> None:
    """append_staged writes, byte for byte, the rows and hashes append writes for the same events."""
    events = [
        audit.AuditEvent("payment_queued", "order", eid, {"payment_ref": eid, "n": i})
        for i, eid in enumerate(_AWKWARD * 2)
    ]
    tables = []
    for name, staged in (("python", False), ("sql", True)):
        c = store.connect(tmp_path / f"{name}.duckdb")
        with store.transaction(c):
            audit.append(c, "r0", [audit.AuditEvent("e0", "thing", "0", {})], logged_at=AT)
        with store.transaction(c):
            if staged:
                _stage(c, events)
                assert audit.append_staged(c, "rün 1", logged_at=AT) == len(events)
            else:
                audit.append(c, "rün 1", events, logged_at=AT)
        assert audit.verify(c) == []
        tables.append(
            c.execute("select *, details::varchar from audit_log order by seq").fetchall()
        )
        c.close()
    assert tables[0] == tables[1]
    assert len(tables[1]) == len(events) + 1


def test_staging_nothing_appends_nothing(con: duckdb.DuckDBPyConnection) -> None:
    with store.transaction(con):
        _stage(con, [])
        assert audit.append_staged(con, "r2", logged_at=AT) == 0
    assert con.execute("select max(seq) from audit_log").fetchone() == (5,)
    assert audit.verify(con) == []
