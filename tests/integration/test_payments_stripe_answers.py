"""How the sender meets Stripe's answers: refusals, a key still in use, partial multicapture.

The cases docs/payments.md ("How the local server follows Stripe") checks against Stripe's
docs, through the real `stripe` package and the local Stripe server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from backorders.adapters.stripe_sender import StripeSender
from backorders.devtools.stripe_server import FakeStripe
from backorders.settings import Settings
from tests.integration import payments_world as w
from tests.integration.payments_world import LINES, sender, settings, two_line_order

pytestmark = pytest.mark.integration


def test_capture_above_capturable_fails_permanently_after_one_request(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """Stripe's 400 amount_too_large is final: one request, `failed` / `permanent`, no capture."""
    from backorders.adapters import payment_send

    w.ready_order(pay_landing, fake_stripe)
    w.cycle(con, pay_landing, settings(tmp_path), "run-1", w.AS_OF)  # queued, not sent
    con.execute("update payment_requests set amount = 5001")  # above the 50.00 authorized
    r = payment_send.send_pending(con, sender(fake_stripe), run_id="run-2", now=lambda: w.AS_OF)
    row = w.requests(con)[0]
    assert r.failed == 1 and fake_stripe.requests_seen == 1 and fake_stripe.captures() == {}
    assert (row["status"], row["failure"]) == ("failed", "permanent")
    assert "amount_too_large" in row["last_error"]


def test_a_key_still_in_use_at_stripe_is_sent_again_not_failed(fake_stripe: FakeStripe) -> None:
    """409 idempotency_key_in_use (a killed pass's request still executing): retried, once."""
    from backorders.adapters.payment_send import OutgoingPayment

    fake_stripe.add_intent("pi_O1", 5000)
    first = w.held_capture(fake_stripe, "pi_O1", "bo_busy")

    def wait(_: float) -> None:  # the backoff: meanwhile the first request is answered
        fake_stripe.release_answers()
        first.join(timeout=30)

    snd = StripeSender(api_key=w.KEY, api_base=fake_stripe.url, max_attempts=3, sleep=wait)
    p = OutgoingPayment("bo_busy", "capture", "pi_O1", None, None, w.AS_OF + timedelta(days=1))
    outcome = snd.send(p)
    assert (outcome.status, outcome.attempts) == ("succeeded", 2)
    assert fake_stripe.captures() == {"pi_O1": [5000]} and fake_stripe.ledger.replayed == 1


def partly_captured_then_cancelled(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> Settings:
    """Multicapture: line 1 captured (20.00, not final) by run 1, then line 2 cancelled."""
    s = settings(tmp_path, payments_multicapture=True)
    two_line_order(pay_landing, fake_stripe, multicapture=True)
    w.stock(pay_landing, {"SKU-A": 2, "SKU-B": 0}, w.AS_OF - timedelta(hours=1))
    w.cycle(con, pay_landing, s, "run-1", w.AS_OF, sender=sender(fake_stripe, multicapture=True))
    w.write(
        pay_landing, "order_lines", LINES, ["O1,2,SKU-B,1,15.50,cancelled,2026-11-23T07:00:00Z"]
    )
    return s


def test_release_after_a_partial_multicapture_frees_the_rest_by_a_final_capture_of_zero(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """Stripe documents no cancel of a partly captured intent: a capture of 0, final, instead."""
    s = partly_captured_then_cancelled(tmp_path, pay_landing, con, fake_stripe)
    later = w.AS_OF + timedelta(hours=2)
    q, r = w.cycle(
        con, pay_landing, s, "run-2", later, sender=sender(fake_stripe, multicapture=True)
    )
    assert (q.captures, q.releases) == (0, 1) and r is not None and r.succeeded == 1
    release = w.requests(con)[-1]
    assert (release["kind"], release["status"], release["provider_status"]) == (
        "release",
        "succeeded",
        "succeeded",
    )
    pi = fake_stripe.intent("pi_O1")
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 2000, 0)
    assert fake_stripe.captures() == {"pi_O1": [2000]}
    assert [e["action"] for e in fake_stripe.ledger.executed] == ["capture", "release"]


def test_release_after_captures_that_all_failed_cancels_the_authorization(
    fake_stripe: FakeStripe,
) -> None:
    """Captures were asked for but none went through: nothing to finish, a plain cancel."""
    from backorders.adapters.payment_send import OutgoingPayment

    fake_stripe.add_intent("pi_O1", 5000, multicapture=True)
    snd = sender(fake_stripe, multicapture=True)
    expires = w.AS_OF + timedelta(days=1)
    p = OutgoingPayment("bo_rel", "release", "pi_O1", None, None, expires, captured_before=2000)
    assert snd.send(p).status == "succeeded"
    pi = fake_stripe.intent("pi_O1")
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("canceled", 0, 0)


def test_release_in_doubt_after_a_partial_multicapture_is_settled_as_done(
    tmp_path: Path, pay_landing: Path, con: duckdb.DuckDBPyConnection, fake_stripe: FakeStripe
) -> None:
    """The release went through two days ago, key forgotten: `succeeded` on the intent is done."""
    from backorders.adapters import payment_send

    s = partly_captured_then_cancelled(tmp_path, pay_landing, con, fake_stripe)
    w.cycle(con, pay_landing, s, "run-2", w.AS_OF + timedelta(hours=2))  # queued, not sent
    con.execute(
        "update payment_requests set status = 'sending', attempts = 1, first_sent_at = $t "
        "where kind = 'release'",
        {"t": w.AS_OF - timedelta(days=2)},
    )
    release = {"amount_to_capture": "0", "final_capture": "true"}
    fake_stripe.ledger.handle("POST", "/v1/payment_intents/pi_O1/capture", release, None)
    snd = sender(fake_stripe, multicapture=True)
    r = payment_send.send_pending(con, snd, run_id="run-3", now=lambda: w.AS_OF)
    row = w.requests(con)[-1]
    assert r.succeeded == 1 and row["status"] == "succeeded"
    assert "found done on the PaymentIntent" in row["last_error"]
    assert [e["action"] for e in fake_stripe.ledger.executed] == ["capture", "release"]


def test_a_500_saved_under_the_key_is_not_resent_but_settled_on_the_intent(
    fake_stripe: FakeStripe,
) -> None:
    """Stripe replays a saved 500 to every retry with the key: one retry, then the intent."""
    from backorders.adapters.payment_send import OutgoingPayment

    fake_stripe.add_intent("pi_O1", 5000)
    fake_stripe.fail_next(1, "500_saved")
    snd = StripeSender(
        api_key=w.KEY, api_base=fake_stripe.url, max_attempts=5, sleep=lambda s: None
    )
    p = OutgoingPayment("bo_500", "capture", "pi_O1", 5000, None, w.AS_OF + timedelta(days=1))
    outcome = snd.send(p)
    assert (outcome.status, outcome.attempts) == ("unknown", 2)
    assert outcome.error is not None and "replays it to every retry" in outcome.error
    assert fake_stripe.requests_seen == 3  # the first, one replayed retry, the lookup
    assert fake_stripe.ledger.replayed == 1 and fake_stripe.captures() == {}
