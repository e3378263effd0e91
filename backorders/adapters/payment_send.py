"""The payment send pass: every due request once, a few at a time, each recorded and audited.

A request moves pending -> sending (committed before it goes out) -> succeeded | failed.
Every request carries its idempotency key, and Stripe answers a repeated key with the
same body by the stored answer of the first: so a request whose outcome is unknown (no
answer, or the process was killed mid-request: found `sending` by the next pass) is
simply sent again with the same key and body, and cannot capture twice (docs/payments.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

import duckdb

from backorders import interrupt
from backorders.adapters import audit, store

log = logging.getLogger(__name__)
Outcome = Literal["succeeded", "failed", "unknown", "not_sent"]


@dataclass(frozen=True)
class OutgoingPayment:
    """One request as it goes out: its key, the PaymentIntent, and the body's fields."""

    request_key: str
    kind: str  # capture, release
    payment_ref: str
    amount: int | None
    final_capture: bool | None
    expires_at: datetime
    captured_before: int = 0  # what earlier captures of the order asked for
    # in doubt for longer than Stripe keeps idempotency keys: look the PaymentIntent up
    # first (did it take effect?) instead of trusting the key's stored answer
    settle: bool = False


@dataclass(frozen=True)
class PaymentOutcome:
    """What the provider answered to one request (or that nothing was answered)."""

    request_key: str
    status: Outcome
    provider_status: str | None = None
    provider_request_id: str | None = None
    error: str | None = None
    attempts: int = 1
    retryable: bool = False


class PaymentSender(Protocol):
    """Anything that sends one payment request and says what happened (StripeSender)."""

    stop_reason: str | None

    def send(self, payment: OutgoingPayment) -> PaymentOutcome:
        """Send this request (retrying as it sees fit, always with its key)."""
        ...


@dataclass
class PaymentSendResult:
    """What one pass did, in requests; `stopped` says why it stopped early (None: it did not)."""

    succeeded: int = 0
    failed: int = 0
    unknown: int = 0
    not_sent: int = 0
    expired: int = 0
    resent: int = 0  # found `sending` (in doubt after a crash) and sent again, same key
    stopped: str | None = None

    @property
    def failures(self) -> int:
        """Requests of this pass that did not succeed: failed, in doubt or left unsent."""
        return self.failed + self.unknown + self.not_sent


_SENDABLE = (
    "select rowid, request_key, kind, payment_ref, amount, final_capture, expires_at, status, "
    "captured_before, first_sent_at "
    "from payment_requests where not preview and (status in ('pending', 'sending') "
    "or (status = 'failed' and failure = 'transient' and attempts < $budget)) "
    "order by created_at, payment_ref, captured_before, request_key"
)
_EVENT = {
    "succeeded": "payment_succeeded",
    "failed": "payment_failed",
    "unknown": "payment_outcome_unknown",
    "not_sent": "payment_not_sent",
}


def send_pending(
    con: duckdb.DuckDBPyConnection,
    sender: PaymentSender,
    *,
    run_id: str,
    now: Callable[[], datetime],
    concurrency: int = 4,
    retry_budget: int = 20,
    lookup_after_s: float = 20 * 3600.0,
    progress: Callable[[str], None] = log.info,
) -> PaymentSendResult:
    """Send every due request (pending, in doubt, or failed transiently within budget).

    Requests of one PaymentIntent go one at a time, in the order they were queued (a
    multicapture's parts before its final capture); up to `concurrency` PaymentIntents
    at once. A request whose authorization has expired is failed, never sent. A request
    in doubt whose first attempt is older than `lookup_after_s` (Stripe keeps keys at
    least 24 hours) is settled by looking its PaymentIntent up before any resend. A stop
    request or a refused key ends the pass; what was not sent stays pending.
    """
    result = PaymentSendResult()
    todo = con.execute(_SENDABLE, {"budget": retry_budget}).fetchall()
    result.resent = sum(1 for r in todo if r[7] == "sending")
    # past its expiry a request is never sent; one in doubt (`sending`) may have gone out
    # before it, so it is sent again with its key: Stripe answers what it did then
    t = now()
    expired = [r for r in todo if t >= r[6] and r[7] != "sending"]
    if expired:
        _record_expired(con, expired, run_id=run_id, now=t)
        result.expired = result.failed = len(expired)
    queue = [r for r in todo if t < r[6] or r[7] == "sending"]
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="pay") as pool:
        while queue:
            result.stopped = _stop_reason(sender)
            if result.stopped:
                break
            chunk, queue = _one_per_intent(queue, max(1, concurrency))
            with store.transaction(con):
                con.execute(
                    "update payment_requests set status = 'sending', attempts = attempts + 1, "
                    "failure = null, first_sent_at = coalesce(first_sent_at, $now) "
                    "where rowid in (select unnest($r::bigint[]))",
                    {"r": [r[0] for r in chunk], "now": now()},
                )
            old = t - timedelta(seconds=lookup_after_s)
            payments = [
                OutgoingPayment(
                    *r[1:7],
                    captured_before=r[8],
                    settle=r[7] == "sending" and r[9] is not None and r[9] < old,
                )
                for r in chunk
            ]
            outcomes = list(pool.map(_send_safely(sender), payments))
            _record(con, outcomes, run_id=run_id, now=now())
            for o in outcomes:
                setattr(result, o.status, getattr(result, o.status) + 1)
    progress(
        f"payments: {result.succeeded} succeeded, {result.failed} failed "
        f"({result.expired} expired), {result.unknown} in doubt, {len(queue)} not sent"
        + (f" (sending stopped: {result.stopped})" if result.stopped else "")
    )
    result.not_sent += len(queue)
    return result


def _one_per_intent(rows: list[tuple], width: int) -> tuple[list[tuple], list[tuple]]:
    """The next requests to send together, at most one per PaymentIntent; and the rest."""
    chunk: list[tuple] = []
    rest: list[tuple] = []
    seen: set[str] = set()
    for r in rows:
        if len(chunk) < width and r[3] not in seen:
            chunk.append(r)
        else:
            rest.append(r)
        seen.add(r[3])  # a later request of an intent waits for the earlier ones
    return chunk, rest


def _stop_reason(sender: PaymentSender) -> str | None:
    """Why no more requests go out: a stop request, or the sender stopped (a refused key)."""
    if interrupt.requested():
        return "a stop was requested (SIGTERM or SIGINT)"
    return sender.stop_reason


def _send_safely(sender: PaymentSender) -> Callable[[OutgoingPayment], PaymentOutcome]:
    """The sender's outcome; an unexpected error leaves the request in doubt (resent later)."""

    def send(p: OutgoingPayment) -> PaymentOutcome:
        try:
            return sender.send(p)
        except Exception as exc:  # a bug or an odd transport error: the request may be out
            log.exception("payment sender raised; the request's outcome is unknown")
            return PaymentOutcome(p.request_key, "unknown", error=type(exc).__name__)

    return send


_STATUS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "unknown": "sending",
    "not_sent": "pending",
}


def _record(
    con: duckdb.DuckDBPyConnection,
    outcomes: Sequence[PaymentOutcome],
    *,
    run_id: str,
    now: datetime,
) -> None:
    """Write the outcomes and one audit row per request, in one transaction."""
    events = []
    with store.transaction(con):
        for o in outcomes:
            failure = (
                "unknown"
                if o.status == "unknown"
                else ("transient" if o.retryable else "permanent")
                if o.status == "failed"
                else None
            )
            row = con.execute(
                "update payment_requests set status = $s, failure = $f, provider_status = "
                "coalesce($ps, provider_status), provider_request_id = coalesce($rid, "
                "provider_request_id), last_error = $e, sent_at = case when $s = 'succeeded' "
                "then $now else sent_at end where request_key = $k "
                "returning order_id, kind, amount, currency, attempts",
                {
                    "s": _STATUS[o.status],
                    "f": failure,
                    "ps": o.provider_status,
                    "rid": o.provider_request_id,
                    "e": o.error,
                    "now": now,
                    "k": o.request_key,
                },
            ).fetchone()
            if row is None:
                continue
            order_id, kind, amount, currency, attempts = row
            details = {
                "request_key": o.request_key,
                "kind": kind,
                "amount": amount,
                "currency": currency,
                "provider_status": o.provider_status,
                "provider_request_id": o.provider_request_id,
                "error": o.error,
                "failure": failure,
                "http_attempts": o.attempts,
                "attempts": attempts,
            }
            events.append(audit.AuditEvent(_EVENT[o.status], "order", order_id, details))
        audit.append(con, run_id, events, logged_at=now)


def _record_expired(
    con: duckdb.DuckDBPyConnection, rows: Sequence[tuple], *, run_id: str, now: datetime
) -> None:
    """Fail the requests whose authorization expired before they went out: never sent."""
    outcomes = [
        PaymentOutcome(
            r[1],
            "failed",
            error=f"authorization expired at {r[6]:%Y-%m-%d %H:%M} UTC before this request went "
            "out: not sent; ask the customer to authorize again",
            attempts=0,
        )
        for r in rows
    ]
    _record(con, outcomes, run_id=run_id, now=now)
