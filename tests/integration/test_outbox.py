"""The outbox on a real DuckDB and a real local SendGrid: at most once, nothing lost."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import audit, outbox, store
from backorders.adapters.sendgrid_sender import SendGridSender
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from backorders.domain.messages import OrderState, format_date
from tests.integration.conftest import allocate_demo, database_before

pytestmark = pytest.mark.integration
SPEC = DemoSpec(seed=3, scale=1)
KEY = "SG.outbox-test-key-123"


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    generate(tmp_path / "landing", SPEC)
    c = store.connect(tmp_path / "db.duckdb")
    allocate_demo(c, tmp_path / "landing", SPEC.as_of)
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
    # in doubt, never `failed`: it stays `sending`, flagged for the lookup or a person
    assert status == "sending" and "in doubt" in err and "message_key" in err
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


def test_emails_are_rendered_when_sent_chunk_by_chunk_as_render_emails_renders_them(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    _queue(con)
    stored = con.execute(
        "select count(*) from outbox_emails where body_text is not null or subject is not null"
    ).fetchone()[0]
    assert stored == 0  # nothing rendered at queueing (migration 008)
    pending = con.execute(
        "select email_key, len(message_keys) from outbox_emails where email_key in "
        "(select email_key from outbox where status = 'pending')"
    ).fetchall()
    assert any(n > 1 for _, n in pending), "some emails combine several orders"
    monkeypatch.setattr(outbox, "RENDER_CHUNK_BATCHES", 2)  # several chunks of 2 x 3 emails

    result = outbox.send_pending(
        con,
        _sender(fake.url),
        run_id="r1",
        now=_now,
        progress=lambda _: None,
        batch_size=3,
        options=outbox.SendOptions(discount_code="SORRY-5"),
    )

    want = outbox.render_emails(con, [k for k, _ in pending], discount_code="SORRY-5")
    got = {d["message_key"]: d for d in fake.deliveries()}
    assert (
        result.sent
        == con.execute("select count(*) from outbox where status = 'sent'").fetchone()[0]
    )
    assert set(got) == set(want) == {k for k, _ in pending}
    for key, r in want.items():
        assert (got[key]["subject"], got[key]["text"], got[key]["html"]) == (
            r.subject,
            r.text,
            r.html,
        )
        assert r.subject and r.text and r.html


def test_the_texts_sent_are_stored_as_sent_and_a_later_render_returns_them(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    # Arrange: queued emails (no text stored), sent once
    _queue(con)
    outbox.send_pending(con, _sender(fake.url), run_id="r1", now=_now, progress=lambda _: None)
    sent = {d["message_key"]: (d["subject"], d["text"], d["html"]) for d in fake.deliveries()}
    assert sent

    # Act: a later run moves every line's date, then the sent emails are rendered again
    con.execute(
        "update line_results set promised_date = promised_date + 400 where promised_date is not null"
    )
    stored = {
        k: (subj, text, html_)
        for k, subj, text, html_ in con.execute(
            "select email_key, subject, body_text, body_html from outbox_emails "
            "where body_text is not null"
        ).fetchall()
    }
    again = outbox.render_emails(con, list(sent))

    # Assert: what went out is on record, word for word, and is what a render returns
    assert stored == sent
    assert {k: (r.subject, r.text, r.html) for k, r in again.items()} == sent


def test_emails_queued_before_migration_008_keep_and_send_their_stored_texts(
    tmp_path: Path, fake: FakeSendGrid
) -> None:
    # Arrange: a database at schema version 7 (every migration before 008) whose outbox holds
    # a sent email and a pending one, rendered and stored as queueing did before 008
    path = tmp_path / "old.duckdb"
    old = database_before(path, 8)
    t = datetime(2026, 11, 20, 6, tzinfo=UTC)
    for key, email, status in (
        ("m1", "m1", "sent"),
        ("m2", "e2", "pending"),
        ("m3", "e2", "pending"),
    ):
        old.execute(
            "insert into outbox (message_key, customer_id, order_id, kind, status, attempts, "
            "created_at, run_id, to_email, subject, body_text, body_html, state, email_key, "
            "provider_message_id, sent_at) values ($k, 'C1', 'O-' || $k, 'backorder_confirmed', "
            "$s, 0, $t, 'old', 'ann@shop.test', 'Subject ' || $k, 'Text of ' || $k, "
            "'<p>' || $k || '</p>', '{\"condition\": \"backordered\", \"promised_date\": null}', "
            "$e, case when $s = 'sent' then 'x-1' end, case when $s = 'sent' then $t end)",
            {"k": key, "e": email, "s": status, "t": t},
        )
    old.execute(
        "insert into outbox_emails values ('m1', 'C1', 'ann@shop.test', 'Ann', 'Your order O-m1', "
        "'Dear Ann, O-m1', '<p>Dear Ann, O-m1</p>', ['backorder_confirmed'], ['m1'], $t), "
        "('e2', 'C1', 'ann@shop.test', 'Ann', 'Your orders O-m2, O-m3', 'Dear Ann, O-m2 O-m3', "
        "'<p>Dear Ann, O-m2 O-m3</p>', ['backorder_confirmed'], ['m2', 'm3'], $t)",
        {"t": t},
    )
    before = {
        tb: sorted(old.execute(f"select * from {tb}").fetchall())
        for tb in ("outbox", "outbox_emails")
    }
    old.close()

    # Act: open (migration 008 runs), then send
    con = store.connect(path)
    try:
        after = {
            tb: sorted(con.execute(f"select * from {tb}").fetchall())
            for tb in ("outbox", "outbox_emails")
        }
        result = outbox.send_pending(
            con, _sender(fake.url), run_id="r2", now=_now, progress=lambda _: None
        )
        statuses = dict(con.execute("select message_key, status from outbox").fetchall())
        on_demand = outbox.render_emails(con, ["m1", "e2"])
    finally:
        con.close()

    # Assert: nothing lost; the pending email went out once with exactly its stored texts
    assert after == before
    assert result.sent == 2 and statuses == {"m1": "sent", "m2": "sent", "m3": "sent"}
    (d,) = fake.deliveries()
    assert (d["message_key"], d["message_keys"]) == ("e2", ["m2", "m3"])
    assert (d["subject"], d["text"], d["html"]) == (
        "Your orders O-m2, O-m3",
        "Dear Ann, O-m2 O-m3",
        "<p>Dear Ann, O-m2 O-m3</p>",
    )
    assert (
        on_demand["m1"].text == "Dear Ann, O-m1"
        and on_demand["e2"].subject == "Your orders O-m2, O-m3"
    )


def test_an_email_rendered_after_its_lines_moved_tells_its_date_and_shows_the_lines_now(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _queue(con)
    key, order_id, state, locale = con.execute(
        "select o.email_key, o.order_id, o.state::varchar, c.locale from outbox o "
        "join customers c using (customer_id) join outbox_emails e using (email_key) "
        "where o.status = 'pending' and len(e.message_keys) = 1 "
        "and json_extract_string(o.state, '$.promised_date') is not null "
        "order by o.email_key limit 1"
    ).fetchone()
    told = OrderState.from_json(state).promised_date
    assert told is not None
    # a later run moved every date far away: no line anywhere has the told date any more
    con.execute(
        "update line_results set promised_date = promised_date + 400 where promised_date is not null"
    )
    moved = con.execute(
        "select min(promised_date) from line_status where order_id = $o and status = 'promised'",
        {"o": order_id},
    ).fetchone()[0]

    (email,) = outbox.render_emails(con, [key]).values()

    assert format_date(told, locale) in email.text  # what the message told, as queued
    if moved is not None:  # its lines as they are now
        assert f"expected {format_date(moved, locale)}" in email.text
