"""Payments captured when stock is there: real feeds, real allocation, the local Stripe server.

Each test ingests orders with Stripe authorizations, allocates as the flow does, queues the
payment requests (sql/payments/new_requests.sql) and sends them through the real `stripe`
package to `FakeStripe`, which is as strict as Stripe about amounts, states and keys.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import store
from backorders.adapters.stripe_sender import StripeSender
from backorders.devtools.stripe_server import FakeStripe
from backorders.settings import load_settings
from tests.integration import payments_world as w
from tests.integration.payments_world import LINES, T0, sender, settings, two_line_order

pytestmark = pytest.mark.integration


def lapsing_order(landing: Path) -> datetime:
    """O1 authorized for 2 days, no stock, promised from a PO 6 days out; its expiry."""
    expires = w.AS_OF + timedelta(days=2)
    w.write(landing, "orders", w.ORDERS_HEADER, [w.order("O1", "pi_O1", 5000, expires=expires)])
    w.write(landing, "order_lines", LINES, [f"O1,1,SKU-A,2,10.00,open,{T0}"])
    w.stock(landing, {"SKU-A": 0}, w.AS_OF - timedelta(hours=1))
    w.write(
        landing,
        "purchase_orders",
        "po_id,line_no,supplier_id,sku,qty,location_id,expected_at,status,updated_at",
        [f"PO1,1,S1,SKU-A,5,L1,{(w.AS_OF + timedelta(days=6)):%Y-%m-%d},open,{T0}"],
    )
    return expires


@pytest.mark.parametrize("multicapture", [False, True])
def test_order_allocated_over_two_runs_captures_at_completion_or_per_part(
    tmp_path: Path,
    pay_landing: Path,
    con: duckdb.DuckDBPyConnection,
    fake_stripe: FakeStripe,
    multicapture: bool,
) -> None:
    """Run 1 has stock for line 1 only, run 2 for both: once at completion, or twice (last final)."""
    s = settings(tmp_path, payments_multicapture=multicapture)
    two_line_order(pay_landing, fake_stripe, multicapture=multicapture)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 0}, w.AS_OF - timedelta(hours=1))
    q1, _ = w.cycle(
        con, pay_landing, s, "run-1", w.AS_OF, sender=sender(fake_stripe, multicapture=multicapture)
    )
    day2 = w.AS_OF + timedelta(days=1)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 1}, day2 - timedelta(hours=1))
    q2, _ = w.cycle(
        con, pay_landing, s, "run-2", day2, sender=sender(fake_stripe, multicapture=multicapture)
    )
    q3, _ = w.cycle(
        con,
        pay_landing,
        s,
        "run-3",
        day2 + timedelta(hours=1),
        sender=sender(fake_stripe, multicapture=multicapture),
    )
    reqs = w.requests(con)
    if multicapture:
        assert (q1.captures, q2.captures) == (1, 1)
        assert fake_stripe.captures() == {"pi_O1": [2000, 1550]}
        assert [(r["amount"], r["final_capture"]) for r in reqs] == [(2000, False), (1550, True)]
    else:
        assert (q1.captures, q2.captures) == (0, 1)
        assert fake_stripe.captures() == {"pi_O1": [3550]}
        assert [(r["amount"], r["final_capture"]) for r in reqs] == [(3550, None)]
    assert q3.captures + q3.releases == 0  # a rerun queues nothing
    assert all(r["status"] == "succeeded" for r in reqs)
    pi = fake_stripe.intent("pi_O1")
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 3550, 0)


def test_capture_never_exceeds_the_authorized_amount(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """Lines worth 35.50 on an authorization of 30.00: 30.00 is captured, and Stripe's rule holds."""
    fake_stripe.add_intent("pi_O1", 3000)
    w.write(pay_landing, "orders", w.ORDERS_HEADER, [w.order("O1", "pi_O1", 3000)])
    w.write(
        pay_landing,
        "order_lines",
        LINES,
        [f"O1,1,SKU-A,2,10.00,open,{T0}", f"O1,2,SKU-B,1,15.50,open,{T0}"],
    )
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 1}, w.AS_OF - timedelta(hours=1))
    q, r = w.cycle(
        con, pay_landing, settings(tmp_path), "run-1", w.AS_OF, sender=sender(fake_stripe)
    )
    assert q.capture_total == {"USD": 3000} and r is not None and r.succeeded == 1
    assert fake_stripe.captures() == {"pi_O1": [3000]}
    # and a request for more than is capturable is refused by the server, as by Stripe
    con.execute(
        "update payment_requests set status = 'pending', amount = 3001, request_key = 'bo_over'"
    )
    r2 = w.cycle(
        con, pay_landing, settings(tmp_path), "run-2", w.AS_OF, sender=sender(fake_stripe)
    )[1]
    row = w.requests(con)[0]
    assert r2 is not None and r2.failed == 1 and fake_stripe.captures() == {"pi_O1": [3000]}
    assert row["status"] == "failed" and row["failure"] == "permanent"
    assert "payment_intent_unexpected_state" in row["last_error"]


def test_release_queued_when_every_line_is_cancelled(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """Both lines cancelled: one release (cancel), nothing captured; a rerun adds nothing."""
    two_line_order(pay_landing, fake_stripe)
    w.stock(pay_landing, {"SKU-A": 0, "SKU-B": 0}, w.AS_OF - timedelta(hours=1))
    s = settings(tmp_path)
    assert (
        w.cycle(con, pay_landing, s, "run-1", w.AS_OF, sender=sender(fake_stripe))[0].releases == 0
    )
    w.write(
        pay_landing,
        "order_lines",
        LINES,
        [
            "O1,1,SKU-A,2,10.00,cancelled,2026-11-23T07:00:00Z",
            "O1,2,SKU-B,1,15.50,cancelled,2026-11-23T07:00:00Z",
        ],
    )
    later = w.AS_OF + timedelta(hours=2)
    q, r = w.cycle(con, pay_landing, s, "run-2", later, sender=sender(fake_stripe))
    assert (q.captures, q.releases) == (0, 1) and r is not None and r.succeeded == 1
    assert w.cycle(con, pay_landing, s, "run-3", later, sender=sender(fake_stripe))[0].releases == 0
    pi = fake_stripe.intent("pi_O1")
    assert (pi.status, pi.amount_received) == ("canceled", 0) and fake_stripe.captures() == {}


def test_expiry_before_the_promised_date_is_flagged_and_no_capture_after_expiry(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """No stock: flagged (no date yet); stock after the expiry: nothing captured, ever."""
    from backorders.payment_stage import authorizations

    fake_stripe.add_intent("pi_O1", 5000)
    expires = lapsing_order(pay_landing)
    s = settings(tmp_path)
    w.cycle(con, pay_landing, s, "run-1", w.AS_OF, sender=sender(fake_stripe))
    flags = authorizations(con, s, w.AS_OF)
    assert [(f["order_id"], f["reauthorize"], f["expired"]) for f in flags] == [("O1", True, False)]
    assert flags[0]["promised_date"] > expires.date()  # promised from the PO, after the expiry
    after = expires + timedelta(hours=1)
    w.stock(pay_landing, {"SKU-A": 2}, after - timedelta(minutes=5))
    q, _ = w.cycle(con, pay_landing, s, "run-2", after, sender=sender(fake_stripe))
    assert q.captures == 0 and w.requests(con) == [] and fake_stripe.captures() == {}
    assert authorizations(con, s, after)[0]["expired"]


def test_request_due_before_expiry_but_sent_after_it_is_failed_never_sent(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """A capture queued in time whose send pass comes after the expiry never reaches Stripe."""
    from backorders.adapters import payment_send

    two_line_order(pay_landing, fake_stripe)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 1}, w.AS_OF - timedelta(hours=1))
    w.cycle(con, pay_landing, settings(tmp_path), "run-1", w.AS_OF)  # queued, not sent
    late = w.AS_OF + timedelta(days=6)
    r = payment_send.send_pending(con, sender(fake_stripe), run_id="late", now=lambda: late)
    row = w.requests(con)[0]
    assert r.expired == 1 and fake_stripe.requests_seen == 0
    assert row["status"] == "failed" and "authorization expired" in row["last_error"]


def test_idempotency_conflict_is_surfaced_clearly(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """The same key with another body: failed for a person, with Stripe's idempotency_error."""
    two_line_order(pay_landing, fake_stripe)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 1}, w.AS_OF - timedelta(hours=1))
    s = settings(tmp_path)
    w.cycle(con, pay_landing, s, "run-1", w.AS_OF, sender=sender(fake_stripe))
    # someone edits the captured request's amount and puts it back to pending by hand
    con.execute("update payment_requests set status = 'pending', amount = 1000")
    _, r = w.cycle(con, pay_landing, s, "run-2", w.AS_OF, sender=sender(fake_stripe))
    row = w.requests(con)[0]
    assert r is not None and r.failed == 1 and fake_stripe.captures() == {"pi_O1": [3550]}
    assert row["status"] == "failed" and row["failure"] == "permanent"
    assert row["last_error"].startswith("idempotency conflict:")
    assert row["request_key"] in row["last_error"]
    event = con.execute("select details->>'error' from audit_log where event = 'payment_failed'")
    assert "idempotency conflict" in event.fetchone()[0]


def test_bad_key_stops_the_pass_and_leaves_requests_pending(
    tmp_path: Path,
    pay_landing: Path,
    con: duckdb.DuckDBPyConnection,
    fake_stripe: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 401 stops sending at once; nothing is failed; the key is in no text anywhere."""
    bad = "sk_test_wrong_51HxYzAbCdEfGhIjKlMnOp"
    for i in range(1, 6):
        fake_stripe.add_intent(f"pi_O{i}", 3000)
    w.write(
        pay_landing,
        "orders",
        w.ORDERS_HEADER,
        [w.order(f"O{i}", f"pi_O{i}", 3000) for i in range(1, 6)],
    )
    w.write(
        pay_landing, "order_lines", LINES, [f"O{i},1,SKU-A,1,10.00,open,{T0}" for i in range(1, 6)]
    )
    w.stock(pay_landing, {"SKU-A": 5}, w.AS_OF - timedelta(hours=1))
    s = settings(tmp_path, payment_concurrency=1)
    snd = sender(fake_stripe, key=bad)
    from backorders.adapters import payment_send

    w.cycle(con, pay_landing, s, "run-1", w.AS_OF)
    r = payment_send.send_pending(con, snd, run_id="run-1", now=lambda: w.AS_OF, concurrency=1)
    assert r.stopped is not None and "STRIPE_API_KEY" in r.stopped
    assert fake_stripe.answered_401 == 1 and r.not_sent == 5 and r.failed == 0
    statuses = {x["status"] for x in w.requests(con)}
    assert statuses == {"pending"}
    dump = " ".join(
        str(v)
        for v in con.execute(
            "select * from payment_requests union all by name select * from audit_log"
        ).fetchall()
    )
    assert bad not in dump and bad not in r.stopped and bad not in caplog.text
    assert bad not in repr(snd)


def test_dry_run_records_previews_and_a_later_real_run_captures_once(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """Two dry runs record one preview; the real run then captures the same order once."""
    two_line_order(pay_landing, fake_stripe)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 1}, w.AS_OF - timedelta(hours=1))
    s = settings(tmp_path)
    assert w.cycle(con, pay_landing, s, "dry-1", w.AS_OF, dry_run=True)[0].captures == 1
    assert w.cycle(con, pay_landing, s, "dry-2", w.AS_OF, dry_run=True)[0].captures == 0
    q, r = w.cycle(con, pay_landing, s, "real", w.AS_OF, sender=sender(fake_stripe))
    assert q.captures == 1 and r is not None and r.succeeded == 1
    assert [(x["preview"], x["status"]) for x in w.requests(con)] == [
        (True, "preview"),
        (False, "succeeded"),
    ]
    assert fake_stripe.captures() == {"pi_O1": [3550]}


def test_every_request_has_its_audit_rows(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """payment_queued when queued and payment_succeeded when done, per request key."""
    two_line_order(pay_landing, fake_stripe, multicapture=True)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 0}, w.AS_OF - timedelta(hours=1))
    s = settings(tmp_path, payments_multicapture=True)
    w.cycle(con, pay_landing, s, "run-1", w.AS_OF, sender=sender(fake_stripe, multicapture=True))
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 1}, w.AS_OF + timedelta(hours=1))
    w.cycle(
        con,
        pay_landing,
        s,
        "run-2",
        w.AS_OF + timedelta(hours=2),
        sender=sender(fake_stripe, multicapture=True),
    )
    events = con.execute(
        "select event, entity_id, details->>'request_key', details->>'amount' from audit_log "
        "where event like 'payment%' order by seq"
    ).fetchall()
    keys = [x["request_key"] for x in w.requests(con)]
    assert [(e[0], e[2]) for e in events] == [
        ("payment_queued", keys[0]),
        ("payment_succeeded", keys[0]),
        ("payment_queued", keys[1]),
        ("payment_succeeded", keys[1]),
    ]
    assert {e[1] for e in events} == {"O1"} and [e[3] for e in events] == ["2000"] * 2 + [
        "1550"
    ] * 2
    # the queued rows' details, written set-based, read as audit.append writes them
    queued = [
        r[0]
        for r in con.execute(
            "select details::varchar from audit_log where event = 'payment_queued' order by seq"
        ).fetchall()
    ]
    assert queued == [
        json.dumps(
            {k: x[k] for k in ("amount", "currency", "final_capture", "kind", "payment_ref")}
            | {"preview": False, "request_key": x["request_key"]},
            sort_keys=True,
            separators=(",", ":"),
        )
        for x in w.requests(con)
    ]


def test_status_explain_and_summary_flag_an_authorization_lapsing_before_the_promise(
    tmp_path: Path, pay_landing: Path, fake_stripe: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    """Promised from a PO 6 days out, authorization good for 2: all three say so."""
    from backorders import cli, payment_stage
    from backorders.report import summary_text

    db = tmp_path / "backorders.duckdb"
    lapsing_order(pay_landing)
    s = settings(tmp_path)
    with store.connect(db) as con:
        w.cycle(con, pay_landing, s, "run-1", w.AS_OF)
        con.execute(
            "insert into runs (run_id, as_of, started_at, status) "
            "values ('run-1', $a, $a, 'succeeded')",
            {"a": w.AS_OF},
        )
    summary = payment_stage.payments_stage(s, "run-1", w.AS_OF, dry_run=True, progress=print)
    assert summary["reauthorize"] == 1 and summary["reauthorize_orders"] == ["O1"]
    text = summary_text({"run_id": "run-1", "payments": summary})
    assert "1 order(s) whose authorization expires before the promised date" in text
    assert cli.main(["status", "O1", "--db", str(db)]) == 0
    status = capsys.readouterr().out
    assert cli.main(["explain", "O1", "--db", str(db)]) == 0
    explain = capsys.readouterr().out
    for out in (status, explain):
        assert "payment: stripe pi_O1, authorized 50.00 USD, expires 2026-11-25" in out
        assert "! authorization expires 2026-11-25 before the promised date 2026-11-30" in out


def test_stripe_key_is_never_shown_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """STRIPE_API_KEY turns sending on; repr and public_dict (logged, audited) only say `set`."""
    import json

    assert not load_settings().payments_enabled
    monkeypatch.setenv("STRIPE_API_KEY", w.KEY)
    s = load_settings()
    assert s.payments_enabled and s.stripe_key() == w.KEY
    assert w.KEY not in repr(s) and w.KEY not in str(s)
    assert w.KEY not in json.dumps(s.public_dict()) and s.public_dict()["stripe_api_key"] == "set"


def test_lost_answer_and_rate_limit_are_retried_with_the_same_key_capturing_once(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """A 429, then a capture whose answer is lost: the third request replays the stored answer."""
    w.ready_order(pay_landing, fake_stripe)
    fake_stripe.fail_next(1, "429")
    fake_stripe.fail_next(1, "drop_after_accept")
    snd = StripeSender(
        api_key=w.KEY, api_base=fake_stripe.url, timeout_s=5, max_attempts=4, sleep=lambda s: None
    )
    _, r = w.cycle(con, pay_landing, settings(tmp_path), "run-1", w.AS_OF, sender=snd)
    row = w.requests(con)[0]
    assert r is not None and r.succeeded == 1 and row["status"] == "succeeded"
    assert (
        fake_stripe.requests_seen == 3
        and fake_stripe.answered_429 == 1
        and fake_stripe.ledger.replayed == 1
    )
    assert fake_stripe.captures() == {"pi_O1": [3550]}  # carried out once, by the second request


def test_a_stop_request_sends_nothing_more_and_leaves_requests_pending(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """SIGTERM asked for before the pass: no request goes out, the rows wait for the next run."""
    import signal

    from backorders import interrupt
    from backorders.adapters import payment_send

    w.ready_order(pay_landing, fake_stripe)
    w.cycle(con, pay_landing, settings(tmp_path), "run-1", w.AS_OF)
    interrupt.request(signal.SIGTERM)
    try:
        r = payment_send.send_pending(con, sender(fake_stripe), run_id="run-1", now=lambda: w.AS_OF)
    finally:
        interrupt.reset()
    assert r.stopped is not None and "stop was requested" in r.stopped and r.not_sent == 1
    assert fake_stripe.requests_seen == 0 and w.requests(con)[0]["status"] == "pending"


@pytest.mark.parametrize("took_effect", [True, False])
def test_in_doubt_past_the_idempotency_window_is_settled_on_the_payment_intent(
    tmp_path: Path,
    pay_landing: Path,
    con: duckdb.DuckDBPyConnection,
    fake_stripe: FakeStripe,
    took_effect: bool,
) -> None:
    """Left `sending` two days ago: the intent says whether it was captured; never twice."""
    from backorders.adapters import payment_send

    w.ready_order(pay_landing, fake_stripe)
    w.cycle(con, pay_landing, settings(tmp_path), "run-1", w.AS_OF)
    con.execute(
        "update payment_requests set status = 'sending', attempts = 1, first_sent_at = $t",
        {"t": w.AS_OF - timedelta(days=2)},
    )
    if took_effect:  # it went through then; Stripe has since forgotten the key
        post = fake_stripe.ledger.handle
        post("POST", "/v1/payment_intents/pi_O1/capture", {"amount_to_capture": "3550"}, None)
    r = payment_send.send_pending(con, sender(fake_stripe), run_id="run-2", now=lambda: w.AS_OF)
    row = w.requests(con)[0]
    assert r.succeeded == 1 and row["status"] == "succeeded"
    assert fake_stripe.captures() == {"pi_O1": [3550]}
    assert ("found done on the PaymentIntent" in (row["last_error"] or "")) is took_effect
