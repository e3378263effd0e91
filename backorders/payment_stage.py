"""The payments stage of a cycle: queue captures and releases, send them, flag lapsing ones.

Runs after allocation (docs/payments.md). Like the communicate stage it opens the DuckDB
file itself and returns a small JSON-able summary; without STRIPE_API_KEY, or on a dry
run, the requests are recorded as previews and nothing is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from backorders import interrupt
from backorders.adapters import payment_queue, payment_send, store
from backorders.domain.payments import format_minor
from backorders.settings import Settings

Progress = Callable[[str], None]
FLAGGED_SHOWN = 20  # the orders to reauthorize that the summary names (the count is whole)


def payments_stage(
    settings: Settings,
    run_id: str,
    as_of: datetime,
    *,
    dry_run: bool,
    progress: Progress,
    sender: payment_send.PaymentSender | None = None,
) -> dict[str, Any]:
    """Queue what the allocation deserves (as of the run), send it unless dry, flag expiries."""
    dry = dry_run or not settings.payments_enabled
    sent: dict[str, Any] = {}
    failures, stopped = 0, None
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        q = queue(con, settings, run_id, as_of, dry_run=dry)
        total = ", ".join(format_minor(v, c) for c, v in sorted(q.capture_total.items())) or "0"
        progress(
            f"payments: {q.captures} capture(s) queued ({total}), {q.releases} release(s)"
            + (" recorded as previews (dry run)" if dry else "")
        )
        if not dry:
            r = send(
                con,
                settings,
                sender or make_stripe_sender(settings),
                run_id=run_id,
                now=_clock(settings, as_of),
                progress=progress,
            )
            sent, failures, stopped = asdict(r), r.failures, r.stopped
        flagged = authorizations(con, settings, as_of, only="reauthorize")
    if flagged:
        progress(
            f"payments: {len(flagged)} order(s) whose authorization expires before the "
            "promised date: ask the customer to authorize again"
        )
    interrupt.check()  # a stop ended the send loop (the requests in flight recorded)
    return {
        "captures_queued": q.captures,
        "releases_queued": q.releases,
        "capture_total": q.capture_total,  # per currency, in the smallest unit
        "capture_total_text": total,
        "dry_run": dry,
        "sent": sent,
        "payment_failures": failures,  # failed, in doubt, or left unsent because sending stopped
        "payment_stopped": stopped,  # why sending stopped early (never the key), or None
        "reauthorize": len(flagged),
        "reauthorize_orders": [f["order_id"] for f in flagged[:FLAGGED_SHOWN]],
    }


def queue(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    as_of: datetime,
    *,
    dry_run: bool,
) -> payment_queue.PaymentQueueResult:
    """The queue step as the stage runs it (the multicapture and expiry settings)."""
    return payment_queue.queue_requests(
        con,
        run_id=run_id,
        now=as_of,
        dry_run=dry_run,
        multicapture=settings.payments_multicapture,
        authorization_days=settings.payment_authorization_days,
    )


def send(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    sender: payment_send.PaymentSender,
    *,
    run_id: str,
    now: Callable[[], datetime],
    progress: Progress,
) -> payment_send.PaymentSendResult:
    """The send pass as the stage runs it (concurrency, retry budget, lookup window)."""
    return payment_send.send_pending(
        con,
        sender,
        run_id=run_id,
        now=now,
        concurrency=settings.payment_concurrency,
        retry_budget=settings.payment_retry_budget,
        lookup_after_s=settings.payment_lookup_after_h * 3600,
        progress=progress,
    )


def _clock(settings: Settings, as_of: datetime) -> Callable[[], datetime]:
    """The send pass's clock: the wall clock, or the run's as-of running on (the demo's)."""
    if settings.payment_clock == "wall":
        return lambda: datetime.now(UTC)
    started = time.monotonic()
    return lambda: as_of + timedelta(seconds=time.monotonic() - started)


def authorizations(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    as_of: datetime,
    *,
    order_id: str | None = None,
    only: str | None = None,
) -> list[dict[str, Any]]:
    """Each authorized order's payment state (sql/payments/authorizations.sql) as dicts."""
    cur = store.run(
        con,
        "payments/authorizations",
        {
            "now": as_of,
            "order_id": order_id,
            "authorization_days": settings.payment_authorization_days,
        },
    )
    cols = [d[0] for d in cur.description or []]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return [r for r in rows if r[only]] if only else rows


def make_stripe_sender(settings: Settings) -> payment_send.PaymentSender:
    """The Stripe sender from settings (the key stays inside the sender)."""
    from backorders.adapters.stripe_sender import StripeSender

    return StripeSender(
        api_key=settings.stripe_key() or "",
        api_base=settings.stripe_api_base,
        timeout_s=settings.payment_timeout_s,
        max_attempts=settings.payment_max_attempts,
        multicapture=settings.payments_multicapture,
    )


def describe_order(con: duckdb.DuckDBPyConnection, settings: Settings, order_id: str) -> list[str]:
    """Lines of text on an order's payment for `status` and `explain` (empty: none authorized).

    Judged as of the run behind line_status (an authorization expired by then is said so).
    """
    row = con.execute(
        "select r.as_of from runs as r join line_results_run as l using (run_id)"
    ).fetchone()
    as_of = row[0] if row else datetime.now(UTC)
    found = authorizations(con, settings, as_of, order_id=order_id)
    if not found:
        return []
    a = found[0]
    cur = a["currency"]
    out = [
        f"  payment: {a['provider']} {a['payment_ref']}, authorized "
        f"{format_minor(a['authorized'], cur)}, expires {a['expires_at']:%Y-%m-%d %H:%M} UTC; "
        f"captured {format_minor(a['captured'], cur)}" + (", released" if a["released"] else "")
    ]
    for kind, amount, final, status, error in con.execute(
        "select kind, amount, final_capture, status, last_error from payment_requests "
        "where order_id = $o and not preview order by created_at, captured_before",
        {"o": order_id},
    ).fetchall():
        what = f"capture {format_minor(amount, cur)}" if kind == "capture" else "release"
        what += " (final)" if final else " (not final)" if final is False else ""
        out.append(f"    {what}: {status}" + (f" ({error})" if error else ""))
    if a["expired"]:
        out.append(
            f"  ! authorization expired at {a['expires_at']:%Y-%m-%d %H:%M} UTC: no capture will "
            "be attempted; ask the customer to authorize again"
        )
    elif a["reauthorize"]:
        when = (
            f"before the promised date {a['promised_date']}"
            if a["promised_date"]
            else "and the order has no promised date yet"
        )
        out.append(
            f"  ! authorization expires {a['expires_at']:%Y-%m-%d} {when}: ask the customer to "
            "authorize again"
        )
    return out
