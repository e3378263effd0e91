"""The outbox on a real DuckDB and a real local SendGrid: at most once, nothing lost."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import allocation_store, audit, ingest, outbox, store
from backorders.adapters.sendgrid_fake import FakeSendGrid
from backorders.adapters.sendgrid_sender import SendGridSender
from backorders.demo_data import DemoSpec, generate
from backorders.settings import load_settings

pytestmark = pytest.mark.integration
SPEC = DemoSpec(seed=3, scale=1)
KEY = "SG.outbox-test-key-123"


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    generate(tmp_path / "landing", SPEC)
    s = load_settings()
    c = store.connect(tmp_path / "db.duckdb")
    ingest.ingest_landing(
        c,
        tmp_path / "landing",
        run_id="r1",
        as_of=SPEC.as_of,
        settings=s,
        now=_now,
        progress=lambda _: None,
    )
    allocation_store.reconcile(c, as_of=SPEC.as_of, settings=s)
    allocation_store.allocate(c, run_id="r1", as_of=SPEC.as_of, settings=s, now=_now())
    yield c
    c.close()


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as f:
        yield f


def _sender(url: str, *, key: str = KEY, attempts: int = 4) -> SendGridSender:
    return SendGridSender(
        api_key=key,
        host=url,
        from_email="care@shop.test",
        timeout_s=2.0,
        max_attempts=attempts,
        sleep=lambda _s: None,
    )


def _queue(con: duckdb.DuckDBPyConnection, keep: int = 40) -> None:
    """Queue this run's messages with all but `keep` customers opted out, so sends stay quick."""
    con.execute(
        "update customers set email_opt_in = false where customer_id not in ("
        "select distinct l.customer_id from line_status l join customers c using (customer_id) "
        "where l.status in ('promised', 'unpromised', 'partially_allocated') "
        "and c.email_opt_in and c.email like '%_@_%._%' order by 1 limit $k)",
        {"k": keep},
    )
    outbox.queue_messages(con, run_id="r1", now=_now(), dry_run=False)


def _status(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("select status, count(*) from outbox group by all").fetchall())


def test_queueing_twice_adds_nothing_the_second_time(con: duckdb.DuckDBPyConnection) -> None:
    first = outbox.queue_messages(con, run_id="r1", now=_now(), dry_run=False)
    second = outbox.queue_messages(con, run_id="r2", now=_now(), dry_run=False)
    assert first.queued > 100
    assert (second.queued, second.suppressed) == (0, 0)


def test_opted_out_and_undeliverable_customers_are_suppressed_with_a_reason(
    con: duckdb.DuckDBPyConnection,
) -> None:
    outbox.queue_messages(con, run_id="r1", now=_now(), dry_run=False)
    rows = con.execute(
        "select c.email_opt_in, c.email, o.status, o.last_error from outbox o "
        "join customers c using (customer_id) where not c.email_opt_in or c.email not like '%@%.%'"
    ).fetchall()
    assert rows, "the demo data has opted-out and undeliverable customers with backorders"
    for opt_in, _email, status, reason in rows:
        assert status == "suppressed"
        assert ("opted out" in reason) if not opt_in else ("not a deliverable" in reason)


def test_every_pending_message_is_sent_once_even_when_rate_limited(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    _queue(con)
    pending = _status(con)["pending"]
    fake.fail_next(3, "429")  # the first message: three rate limits, then accepted
    fake.set_failure_rate(0.3, ["429", "500", "503"], seed=5)  # then 30 % transient faults
    result = outbox.send_pending(
        con, _sender(fake.url, attempts=10), run_id="r1", now=_now, progress=lambda _: None
    )
    again = outbox.send_pending(
        con, _sender(fake.url), run_id="r2", now=_now, progress=lambda _: None
    )
    keys = fake.received_keys()
    assert result.sent == pending and again.sent == 0
    assert len(keys) == pending and set(keys.values()) == {1}
    sent = con.execute(
        "select count(*) from outbox where status = 'sent' and provider_message_id is not null"
    ).fetchone()[0]
    assert sent == pending


def test_sendgrid_down_fails_messages_with_a_reason_and_loses_none(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _queue(con)
    pending = _status(con)["pending"]
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = outbox.send_pending(
        con, _sender(closed, attempts=2), run_id="r1", now=_now, progress=lambda _: None
    )
    rows = con.execute("select attempts, last_error from outbox where status = 'failed'").fetchall()
    assert result.failed == pending == len(rows)
    assert all(a == 2 and err for a, err in rows)


def test_message_left_sending_by_a_killed_process_is_not_resent_blindly(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    _queue(con)
    key = con.execute(
        "select message_key from outbox where status = 'pending' and email_key = message_key "
        "limit 1"
    ).fetchone()[0]
    con.execute(
        "update outbox set status = 'sending', attempts = 1 where message_key = $k", {"k": key}
    )
    outbox.send_pending(con, _sender(fake.url), run_id="r2", now=_now, progress=lambda _: None)
    status, err = con.execute(
        "select status, last_error from outbox where message_key = $k", {"k": key}
    ).fetchone()
    assert status == "failed" and "outcome unknown" in err
    assert key not in fake.received_keys()
    assert (
        con.execute(
            "select count(*) from audit_log where event = 'message_outcome_unknown' and entity_id = $k",
            {"k": key},
        ).fetchone()[0]
        == 1
    )


def test_wrong_api_key_fails_without_the_key_reaching_outbox_or_audit(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    _queue(con)
    wrong = "SG.wrong-secret-key-xyz"
    outbox.send_pending(
        con, _sender(fake.url, key=wrong), run_id="r1", now=_now, progress=lambda _: None
    )
    errors = " ".join(
        e for (e,) in con.execute("select coalesce(last_error, '') from outbox").fetchall()
    )
    details = " ".join(
        d for (d,) in con.execute("select details::varchar from audit_log").fetchall()
    )
    assert "401" in errors
    assert wrong not in errors and wrong not in details
    assert audit.verify(con) == []
