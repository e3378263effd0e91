"""The local Stripe server is as strict as Stripe: amounts, states, idempotency, keys, limits.

Through raw HTTP (to see Stripe's error shape and headers) and through the official
`stripe` package (to see that what passes here is what the package sends).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import stripe

from backorders.devtools.stripe_server import FakeStripe
from tests.integration.payments_world import KEY, held_capture  # KEY: `fake_stripe`'s

pytestmark = pytest.mark.integration


def post(
    fake_stripe: FakeStripe,
    path: str,
    params: dict[str, Any],
    *,
    key: str | None = None,
    idem: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A form-encoded POST as Stripe takes them: (status, JSON body, headers)."""
    req = urllib.request.Request(
        fake_stripe.url + path, data=urllib.parse.urlencode(params).encode(), method="POST"
    )
    req.add_header("Authorization", f"Bearer {key or KEY}")
    if idem:
        req.add_header("Idempotency-Key", idem)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_capture_above_capturable_is_refused_with_stripes_error_shape(
    fake_stripe: FakeStripe,
) -> None:
    fake_stripe.add_intent("pi_a", 1000)
    status, body, _ = post(
        fake_stripe, "/v1/payment_intents/pi_a/capture", {"amount_to_capture": 1001}
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "amount_too_large"
    assert body["error"]["param"] == "amount_to_capture"
    assert fake_stripe.intent("pi_a").status == "requires_capture"
    for bad in ("10.5", "-1", "ten"):  # integers in the smallest unit only
        status, body, _ = post(
            fake_stripe, "/v1/payment_intents/pi_a/capture", {"amount_to_capture": bad}
        )
        assert status == 400 and body["error"]["param"] == "amount_to_capture"


def test_no_second_capture_without_multicapture_and_none_after_cancel(
    fake_stripe: FakeStripe,
) -> None:
    fake_stripe.add_intent("pi_a", 1000)
    fake_stripe.add_intent("pi_b", 1000)
    assert (
        post(fake_stripe, "/v1/payment_intents/pi_a/capture", {"amount_to_capture": 400})[0] == 200
    )
    pi = fake_stripe.intent("pi_a")
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 400, 0)
    status, body, _ = post(
        fake_stripe, "/v1/payment_intents/pi_a/capture", {"amount_to_capture": 100}
    )
    assert status == 400 and body["error"]["code"] == "payment_intent_unexpected_state"
    status, body, _ = post(
        fake_stripe, "/v1/payment_intents/pi_a/capture", {"final_capture": "false"}
    )
    assert status == 400 and body["error"]["param"] == "final_capture"
    assert post(fake_stripe, "/v1/payment_intents/pi_b/cancel", {})[0] == 200
    status, body, _ = post(fake_stripe, "/v1/payment_intents/pi_b/capture", {})
    assert status == 400 and body["error"]["code"] == "payment_intent_unexpected_state"


def test_multicapture_keeps_the_rest_until_the_final_capture(fake_stripe: FakeStripe) -> None:
    fake_stripe.add_intent("pi_m", 1000, multicapture=True)
    path = "/v1/payment_intents/pi_m/capture"
    assert post(fake_stripe, path, {"amount_to_capture": 300, "final_capture": "false"})[0] == 200
    assert fake_stripe.intent("pi_m").status == "requires_capture"
    assert fake_stripe.intent("pi_m").amount_capturable == 700
    assert post(fake_stripe, path, {"amount_to_capture": 800, "final_capture": "false"})[0] == 400
    assert post(fake_stripe, path, {"amount_to_capture": 200})[0] == 200  # final: the rest released
    pi = fake_stripe.intent("pi_m")
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 500, 0)
    assert fake_stripe.captures() == {"pi_m": [300, 200]}


def test_expired_authorization_is_canceled_and_cannot_be_captured() -> None:
    now = [1_000_000.0]
    with FakeStripe(api_key=KEY, clock=lambda: now[0]) as fake_stripe:
        fake_stripe.add_intent("pi_e", 1000, capture_before=now[0] + 60)
        now[0] += 61
        status, body, _ = post(fake_stripe, "/v1/payment_intents/pi_e/capture", {})
        assert status == 400 and body["error"]["code"] == "payment_intent_unexpected_state"
        pi = fake_stripe.intent("pi_e")
        assert (pi.status, pi.cancellation_reason, fake_stripe.captures()) == (
            "canceled",
            "expired",
            {},
        )


def test_same_key_same_body_same_answer_other_body_idempotency_error(
    fake_stripe: FakeStripe,
) -> None:
    fake_stripe.add_intent("pi_i", 1000)
    path = "/v1/payment_intents/pi_i/capture"
    first = post(fake_stripe, path, {"amount_to_capture": 500}, idem="k1")
    again = post(fake_stripe, path, {"amount_to_capture": 500}, idem="k1")
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert again[2].get("Idempotent-Replayed") == "true"
    assert fake_stripe.captures() == {"pi_i": [500]}  # carried out once
    status, body, _ = post(fake_stripe, path, {"amount_to_capture": 400}, idem="k1")
    assert status == 400 and body["error"]["type"] == "idempotency_error"
    assert "same parameters" in body["error"]["message"]


def test_bad_key_is_401_without_showing_the_key(fake_stripe: FakeStripe) -> None:
    fake_stripe.add_intent("pi_k", 1000)
    wrong = "sk_test_wrong_key_abcdefghijklmnop"
    status, body, _ = post(fake_stripe, "/v1/payment_intents/pi_k/capture", {}, key=wrong)
    assert status == 401 and wrong not in json.dumps(body)
    assert fake_stripe.intent("pi_k").status == "requires_capture"


def test_rate_limit_answers_429_rate_limit() -> None:
    with FakeStripe(api_key=KEY, rate_limit_per_s=2, clock=lambda: 5.5) as fake_stripe:
        fake_stripe.add_intent("pi_r", 1000)
        answers = [post(fake_stripe, "/v1/payment_intents/pi_r", {})[0] for _ in range(3)]
        status, body, _ = post(fake_stripe, "/v1/payment_intents/pi_r/cancel", {})
    assert answers[2] == 429 and status == 429 and body["error"]["code"] == "rate_limit"


def test_the_stripe_package_captures_through_the_server(fake_stripe: FakeStripe) -> None:
    fake_stripe.add_intent("pi_p", 2500)
    client = stripe.StripeClient(
        KEY, base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )
    pi = client.v1.payment_intents.capture(
        "pi_p", {"amount_to_capture": 2000}, {"idempotency_key": "kp"}
    )
    assert (pi.status, pi.amount_received) == ("succeeded", 2000)
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.capture(
            "pi_p", {"amount_to_capture": 1999}, {"idempotency_key": "kp"}
        )
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient(
            "sk_test_nope", base_addresses={"api": fake_stripe.url}
        ).v1.payment_intents.retrieve("pi_p")


def test_server_runs_as_a_process_and_reports_what_it_did(tmp_path: Path) -> None:
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps([{"id": "pi_x", "amount": 700, "currency": "eur"}]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backorders.devtools.stripe_server",
            "--key",
            KEY,
            "--intents",
            str(intents),
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    client = stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)
    assert client.v1.payment_intents.capture("pi_x").amount_received == 700
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert "captured 1 time(s) on 1 intent(s)" in err


# --- Stripe's answers in the three cases docs/payments.md checks against Stripe's docs ---


def client(fake_stripe: FakeStripe) -> stripe.StripeClient:
    """The official package pointed at the local server, without its own retries."""
    return stripe.StripeClient(KEY, base_addresses={"api": fake_stripe.url}, max_network_retries=0)


def multicapture_intent(fake_stripe: FakeStripe, intent_id: str) -> Any:
    """An authorized 10.00 intent with multicapture; the package's payment_intents service."""
    fake_stripe.add_intent(intent_id, 1000, multicapture=True)
    return client(fake_stripe).v1.payment_intents


def test_capture_above_capturable_raises_amount_too_large_in_the_stripe_package(
    fake_stripe: FakeStripe,
) -> None:
    intents = multicapture_intent(fake_stripe, "pi_o")
    intents.capture("pi_o", {"amount_to_capture": 300, "final_capture": False})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        intents.capture("pi_o", {"amount_to_capture": 701, "final_capture": False})
    err = caught.value
    assert (err.http_status, err.code, err.param) == (400, "amount_too_large", "amount_to_capture")
    assert err.error is not None and err.error.type == "invalid_request_error"
    pi = fake_stripe.intent("pi_o")
    assert (pi.status, pi.amount_capturable, pi.amount_received) == ("requires_capture", 700, 300)


def test_partial_multicapture_is_released_by_a_final_capture_of_zero_not_by_cancel(
    fake_stripe: FakeStripe,
) -> None:
    """Stripe's multicapture guide: the rest goes back with amount_to_capture=0, final."""
    intents = multicapture_intent(fake_stripe, "pi_m")
    pi = intents.capture("pi_m", {"amount_to_capture": 700, "final_capture": False})
    assert (pi.status, pi.amount_capturable, pi.amount_received) == ("requires_capture", 300, 700)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        intents.cancel("pi_m")
    assert caught.value.code == "payment_intent_unexpected_state"
    assert "amount_to_capture=0" in str(caught.value.user_message)
    pi = intents.capture("pi_m", {"amount_to_capture": 0, "final_capture": True})
    assert (pi.status, pi.amount_capturable, pi.amount_received) == ("succeeded", 0, 700)
    assert fake_stripe.captures() == {"pi_m": [700]}  # the release is no capture
    fake_stripe.add_intent("pi_z", 1000, multicapture=True)
    with pytest.raises(stripe.InvalidRequestError) as zero:  # nothing captured: 0 is refused
        intents.capture("pi_z", {"amount_to_capture": 0, "final_capture": True})
    assert zero.value.code == "amount_too_small"


def test_non_final_capture_of_all_that_is_left_keeps_the_intent_open(
    fake_stripe: FakeStripe,
) -> None:
    """It stays requires_capture until a final capture (or expiry), as the guide lists."""
    intents = multicapture_intent(fake_stripe, "pi_n")
    pi = intents.capture("pi_n", {"amount_to_capture": 1000, "final_capture": False})
    assert (pi.status, pi.amount_capturable) == ("requires_capture", 0)
    assert intents.capture("pi_n", {"amount_to_capture": 0, "final_capture": True}).status == (
        "succeeded"
    )


def test_partially_captured_intent_that_lapses_succeeds_and_an_uncaptured_one_is_canceled() -> None:
    now = [2_000_000.0]
    with FakeStripe(api_key=KEY, clock=lambda: now[0]) as fake_stripe:
        fake_stripe.add_intent("pi_p", 1000, capture_before=now[0] + 60, multicapture=True)
        fake_stripe.add_intent("pi_u", 1000, capture_before=now[0] + 60, multicapture=True)
        client(fake_stripe).v1.payment_intents.capture(
            "pi_p", {"amount_to_capture": 400, "final_capture": False}
        )
        now[0] += 61
        p = client(fake_stripe).v1.payment_intents.retrieve("pi_p")
        u = client(fake_stripe).v1.payment_intents.retrieve("pi_u")
    assert (p.status, p.amount_received, p.amount_capturable) == ("succeeded", 400, 0)
    assert (u.status, u.cancellation_reason) == ("canceled", "expired")


def test_same_key_other_body_raises_idempotency_error_unless_the_first_failed_validation(
    fake_stripe: FakeStripe,
) -> None:
    fake_stripe.add_intent("pi_k", 1000)
    intents = client(fake_stripe).v1.payment_intents
    intents.capture("pi_k", {"amount_to_capture": 600}, {"idempotency_key": "k-1"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        intents.capture("pi_k", {"amount_to_capture": 500}, {"idempotency_key": "k-1"})
    assert caught.value.http_status == 400
    assert caught.value.error is not None and caught.value.error.type == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):  # another endpoint under the key: the same
        intents.cancel("pi_k", {}, {"idempotency_key": "k-1"})
    # Stripe saves no result for a request refused by validation: the key stays free
    fake_stripe.add_intent("pi_v", 1000)
    with pytest.raises(stripe.InvalidRequestError) as bad:
        intents.capture("pi_v", {"amount_to_capture": "ten"}, {"idempotency_key": "k-2"})
    assert bad.value.code == "parameter_invalid_integer"
    pi = intents.capture("pi_v", {"amount_to_capture": 1000}, {"idempotency_key": "k-2"})
    assert pi.status == "succeeded" and fake_stripe.captures()["pi_v"] == [1000]


def test_same_key_while_the_first_request_executes_is_409_idempotency_key_in_use(
    fake_stripe: FakeStripe,
) -> None:
    """Stripe: 409 Conflict, idempotency_key_in_use; nothing stored, the first answer later."""
    fake_stripe.add_intent("pi_h", 1000)
    first = held_capture(fake_stripe, "pi_h", "k-h")
    intents = client(fake_stripe).v1.payment_intents
    with pytest.raises(stripe.APIError) as caught:
        intents.capture("pi_h", {}, {"idempotency_key": "k-h"})
    err = caught.value.error  # an APIError carries the code on its error object only
    assert caught.value.http_status == 409 and err is not None
    assert err.code == "idempotency_key_in_use"
    fake_stripe.release_answers()
    first.join(timeout=30)
    pi = intents.capture("pi_h", {}, {"idempotency_key": "k-h"})  # the stored answer
    assert pi.status == "succeeded" and fake_stripe.ledger.replayed == 1
    assert fake_stripe.captures() == {"pi_h": [1000]}


def test_a_500_saved_under_a_key_is_replayed_and_nothing_is_carried_out(
    fake_stripe: FakeStripe,
) -> None:
    """Stripe saves an answer once the endpoint began, "including 500 errors"."""
    fake_stripe.add_intent("pi_5", 1000)
    fake_stripe.fail_next(1, "500_saved")
    path = "/v1/payment_intents/pi_5/capture"
    first = post(fake_stripe, path, {}, idem="k-5")
    again = post(fake_stripe, path, {}, idem="k-5")
    assert first[0] == again[0] == 500 and again[2].get("Idempotent-Replayed") == "true"
    assert first[1]["error"]["type"] == "api_error" and fake_stripe.captures() == {}
    assert post(fake_stripe, path, {}, idem="k-6")[0] == 200  # another key: carried out
