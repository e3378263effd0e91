"""Queueing payment requests: a capture when stock is there, a release when nothing will ship.

Set-based in one transaction (sql/payments/new_requests.sql, the SQL form of
backorders.domain.payments.decide): each request's idempotency key is deterministic, so
a rerun, a retry or a crash can only find the row already there; the candidates are
derived from line_status against what payment_requests already asked, so a run that
dies after allocating and before queueing leaves the same candidates for the next run.
Every queued request gets its own audit row (`payment_queued`), built by
sql/payments/queued_audit.sql and chained by audit.append_staged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from backorders.adapters import audit, store
from backorders.domain.payments import THREE_DECIMAL, ZERO_DECIMAL

QUEUED_EVENT = "payment_queued"


@dataclass
class PaymentQueueResult:
    """What one queue step recorded: captures and releases, and the captured total."""

    captures: int = 0
    releases: int = 0
    preview: bool = False
    # amount to capture per currency, in the smallest unit (cents for USD)
    capture_total: dict[str, int] = field(default_factory=dict)


def queue_requests(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    now: datetime,
    dry_run: bool,
    multicapture: bool,
    authorization_days: int,
) -> PaymentQueueResult:
    """Queue the captures and releases the allocation deserves (idempotent by request key).

    A dry run records them as previews (status `preview`, keys of their own): they never
    count as asked, so a later real run queues what is due then, once.
    """
    result = PaymentQueueResult(preview=dry_run)
    with store.transaction(con):
        store.run(
            con,
            "payments/new_requests",
            {
                "now": now,
                "dry_run": dry_run,
                "multicapture": multicapture,
                "authorization_days": authorization_days,
                "zero_decimal": list(ZERO_DECIMAL),
                "three_decimal": list(THREE_DECIMAL),
            },
        )
        counts = con.execute(
            "select kind, currency, count(*), coalesce(sum(amount), 0) from payment_new "
            "group by all order by all"
        ).fetchall()
        if counts:
            con.execute(
                "insert into payment_requests (request_key, order_id, customer_id, provider, "
                "payment_ref, kind, amount, captured_before, currency, final_capture, "
                "expires_at, preview, status, attempts, run_id, created_at) "
                "select request_key, order_id, customer_id, provider, payment_ref, kind, amount, "
                "captured_before, currency, final_capture, expires_at, preview, "
                "case when preview then 'preview' else 'pending' end, 0, $run, $now "
                "from payment_new",
                {"run": run_id, "now": now},
            )
            # one audit row per request, staged in SQL and chained set-based
            store.run(con, "payments/queued_audit", {"event": QUEUED_EVENT})
            audit.append_staged(con, run_id, logged_at=now)
        for kind, currency, n, amount in counts:
            if kind == "capture":
                result.captures += n
                result.capture_total[currency] = result.capture_total.get(currency, 0) + amount
            else:
                result.releases += n
        con.execute("drop table if exists payment_new")
    return result
