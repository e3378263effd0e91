"""Send payment requests to Stripe through the official `stripe` package, with safe retries.

Facts this adapter relies on (stripe 16.1.0, checked in its source, and Stripe's docs):

* ``StripeClient(api_key, base_addresses={"api": URL}, max_network_retries=0,
  http_client=RequestsClient(timeout=...))`` talks to any Stripe-compatible server;
  retries are ours, so that each one reuses the request's own Idempotency-Key.
* ``client.v1.payment_intents.capture(id, params, options={"idempotency_key": k})``;
  without a key the package invents a random one per POST, which would make a retry a
  new request: every request here passes its own.
* Stripe stores the status and body of the first request with a key (for at least 24
  hours) and answers a repeat with the same parameters by that stored answer; the same
  key with other parameters is a 400 ``idempotency_error`` (``stripe.IdempotencyError``).
* Errors: 401 ``AuthenticationError``, 403 ``PermissionError``, 429 ``RateLimitError``,
  400/404 ``InvalidRequestError`` (code, e.g. ``payment_intent_unexpected_state``,
  ``amount_too_large``), 402 ``CardError``, 409 and 5xx ``APIError`` (409
  ``idempotency_key_in_use``: a request with the key is still executing), no answer
  ``APIConnectionError``. The package does not log request headers (the key); it logs
  requests and response bodies on logger ``stripe``, which backorders.adapters.redact
  filters (as every error text here is scrubbed by its ``scrub``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import stripe

from backorders.adapters.payment_send import OutgoingPayment, PaymentOutcome
from backorders.adapters.redact import REDACTED, scrub
from backorders.adapters.sendgrid_retry import interruptible_sleep, retry_after_s

_MAX_ERROR = 500


class StripeSender:
    """Captures and cancels PaymentIntents; one instance per send pass (the key stays here)."""

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "https://api.stripe.com",
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        max_backoff_s: float = 30.0,
        multicapture: bool = False,
        sleep: Callable[[float], None] = interruptible_sleep,
    ) -> None:
        if not api_key:
            raise ValueError("STRIPE_API_KEY is empty: set it, or run without it (dry run)")
        self._key = api_key
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout_s),
        )
        self._max_attempts = max(1, max_attempts)
        self._max_backoff_s = max_backoff_s
        self._multicapture = multicapture
        self._sleep = sleep
        self.stop_reason: str | None = None

    def __repr__(self) -> str:
        return f"StripeSender(api_key={REDACTED})"

    def _call(self, p: OutgoingPayment) -> Any:
        options: Any = {"idempotency_key": p.request_key}
        intents = self._client.v1.payment_intents
        if p.kind == "release" and self._partly_captured(p):
            # Stripe's multicapture guide releases the rest of a partially captured intent
            # with a final capture of 0 (docs.stripe.com/payments/multicapture), not a cancel
            return intents.capture(
                p.payment_ref, {"amount_to_capture": 0, "final_capture": True}, options
            )
        if p.kind == "release":
            return intents.cancel(p.payment_ref, {"cancellation_reason": "abandoned"}, options)
        params: Any = {"amount_to_capture": p.amount}
        if self._multicapture and p.final_capture is not None:
            params["final_capture"] = p.final_capture
        return intents.capture(p.payment_ref, params, options)

    def _partly_captured(self, p: OutgoingPayment) -> bool:
        """Has the intent of a release received captures? Asked only after capture requests.

        The intent says, not the requests: if every earlier capture failed, nothing was
        captured and a cancel frees the authorization. Between attempts of one release the
        answer stays the same (its intent's captures all went before it), so a resend
        with its key is the same request.
        """
        if not (self._multicapture and p.captured_before > 0):
            return False
        pi = self._client.v1.payment_intents.retrieve(p.payment_ref)
        return int(pi.amount_received or 0) > 0

    def send(self, p: OutgoingPayment) -> PaymentOutcome:
        """One request, retried with the same key on 429, 5xx and no answer."""
        if p.settle:
            done = self._took_effect(p)
            if done is not None:
                return done
        last: PaymentOutcome | None = None
        for attempt in range(1, self._max_attempts + 1):
            if self.stop_reason:
                break
            try:
                pi = self._call(p)
            except stripe.StripeError as exc:
                outcome, wait = self._judge(p, exc, attempt)
                if wait is None:
                    return outcome
                last = outcome
                if attempt < self._max_attempts:
                    self._sleep(wait)
                continue
            rid = getattr(getattr(pi, "last_response", None), "request_id", None)
            return PaymentOutcome(p.request_key, "succeeded", str(pi.status), rid, None, attempt)
        if last is None:  # stopped before the first attempt
            return PaymentOutcome(p.request_key, "not_sent", error=self.stop_reason, attempts=0)
        return last

    def _took_effect(
        self,
        p: OutgoingPayment,
        note: str = "in doubt past Stripe's idempotency window: found done on the PaymentIntent",
    ) -> PaymentOutcome | None:
        """Did a request in doubt take effect? Its PaymentIntent says (None: no, or unknown).

        For a request in doubt longer than Stripe keeps idempotency keys: a capture took
        effect when the intent has received this and every earlier capture of the order,
        a release when nothing is authorized any more (canceled; succeeded after a final
        capture of 0 released the rest of a partial multicapture).
        """
        try:
            pi = self._client.v1.payment_intents.retrieve(p.payment_ref)
        except stripe.StripeError:
            return None  # the resend below meets the same error and says it
        if p.kind == "release":
            done = pi.status in ("canceled", "succeeded")
        else:
            done = int(pi.amount_received or 0) >= p.captured_before + (p.amount or 0)
        if not done:
            return None
        rid = getattr(getattr(pi, "last_response", None), "request_id", None)
        return PaymentOutcome(p.request_key, "succeeded", str(pi.status), rid, note, 1)

    def _judge(
        self, p: OutgoingPayment, exc: stripe.StripeError, attempt: int
    ) -> tuple[PaymentOutcome, float | None]:
        """The outcome of a failed attempt, and how long to wait before another (None: final)."""
        text = self._text(exc)
        key = p.request_key
        if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
            self.stop_reason = (
                f"Stripe refused the API key (HTTP {exc.http_status}: {text}): check "
                "STRIPE_API_KEY and its permissions; nothing more is sent in this pass"
            )
            return PaymentOutcome(key, "not_sent", error=self.stop_reason, attempts=attempt), None
        if isinstance(exc, stripe.IdempotencyError):
            error = (
                f"idempotency conflict: Stripe has key {key} for another request ({text}); "
                "the stored request and this row differ: check the row against Stripe's "
                "dashboard before doing anything by hand"
            )
            return PaymentOutcome(key, "failed", error=error, attempts=attempt), None
        backoff = min(self._max_backoff_s, random.uniform(0, 0.5 * 2 ** (attempt - 1)))
        if isinstance(exc, stripe.RateLimitError):
            hinted = retry_after_s(exc.headers, time.time())
            wait = min(self._max_backoff_s, hinted) if hinted is not None else backoff
            error = f"rate limited (HTTP 429) {attempt} time(s): {text}"
            return PaymentOutcome(
                key, "failed", error=error, attempts=attempt, retryable=True
            ), wait
        if exc.http_status == 409:  # idempotency_key_in_use: the first is still executing
            error = (
                f"Stripe is still executing an earlier request with this key (HTTP 409, "
                f"{_code(exc) or 'conflict'}: {text}); sent again with the key"
            )
            return PaymentOutcome(key, "unknown", error=error, attempts=attempt), backoff
        if isinstance(exc, stripe.APIConnectionError):
            # the request may have reached Stripe: in doubt, and safe to send again (same key)
            error = f"no answer from Stripe ({text}); sent again with the same key"
            return PaymentOutcome(key, "unknown", error=error, attempts=attempt), backoff
        if exc.http_status == 500 and _replayed(exc):
            # Stripe saved this 500 under the key once the endpoint began: every retry with
            # the key gets it again, so the PaymentIntent says instead
            done = self._took_effect(p, "Stripe replays a 500 saved under the key: found done")
            if done is not None:
                return done, None
            error = (
                f"Stripe saved a 500 under key {key} and replays it to every retry ({text}); "
                "the PaymentIntent shows it not done: in doubt until Stripe forgets the key "
                "(payment_lookup_after_h)"
            )
            return PaymentOutcome(key, "unknown", error=error, attempts=attempt), None
        if isinstance(exc, stripe.APIError) and (exc.http_status or 500) >= 500:
            error = f"Stripe answered HTTP {exc.http_status}: {text}"
            status = "unknown" if exc.http_status == 500 else "failed"
            return PaymentOutcome(
                key, status, error=error, attempts=attempt, retryable=True
            ), backoff
        code = _code(exc)
        error = f"Stripe refused the request (HTTP {exc.http_status}, {code or 'no code'}): {text}"
        return PaymentOutcome(key, "failed", error=error, attempts=attempt), None

    def _text(self, exc: stripe.StripeError) -> str:
        """Stripe's own message, without the key, one line, bounded."""
        message = getattr(exc, "user_message", None) or getattr(exc, "_message", None) or ""
        return " ".join(scrub(str(message), self._key).split())[:_MAX_ERROR]


def _code(exc: stripe.StripeError) -> str | None:
    """Stripe's error code (an APIError, e.g. a 409, carries it on its error object only)."""
    err = getattr(exc, "error", None)
    return getattr(exc, "code", None) or (getattr(err, "code", None) if err else None)


def _replayed(exc: stripe.StripeError) -> bool:
    """Was this answer Stripe's stored answer to an earlier request with the key?"""
    headers = getattr(exc, "headers", None) or {}
    return any(k.lower() == "idempotent-replayed" and v == "true" for k, v in headers.items())
