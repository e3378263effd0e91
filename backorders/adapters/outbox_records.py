"""What a request does to the outbox: mark its rows `sending`, keep its texts, record outcomes.

Each is one set-based statement on the rows' rowids (a point lookup: outbox keeps no key
index, migration 004), checked against the keys, with a fallback by key alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from backorders.adapters import audit, store
from backorders.adapters.outbox_batches import Batch
from backorders.domain.email import SendOutcome


def set_sending(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """Mark a request's messages `sending` (one more attempt) just before it goes out."""
    sql = (
        "update outbox set status = 'sending', failure = null, unknown_since = null, "
        "attempts = attempts + 1 where email_key in (select unnest($k::varchar[]))"
    )
    if _by_rowid(con, sql, "outbox", batch.row_ids, {"k": batch.keys}) != len(batch.row_ids):
        con.execute(sql, {"k": batch.keys})  # a row moved (it never does): by key alone


def _by_rowid(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    table: str,
    row_ids: Sequence[int],
    params: dict[str, Any],
) -> int:
    """Run an update restricted to these rowids of `table` (a point lookup); rows changed."""
    if not row_ids:
        return -1
    row = con.execute(
        f"{sql} and {table}.rowid in (select unnest($rids::bigint[]))",
        {**params, "rids": list(row_ids)},
    ).fetchone()
    return int(row[0]) if row else 0


def keep_texts(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """Store each email's texts as its first request goes out, in the same transaction.

    Queueing stores no text (migration 008), but what a customer was sent must stay on
    record: the texts are written once, when first sent, so `backorders emails` shows
    them as sent, and a retry or a requeue sends the same words again (EmailRenderer
    returns stored texts as they are). For a dynamic-template email they are the
    rendered fallback of the same state its template data was built from.
    """
    emails = batch.emails
    sql = (
        "update outbox_emails set subject = t.subject, body_text = t.body_text, "
        "body_html = t.body_html "
        "from (select unnest($k::varchar[]) as email_key, unnest($s::varchar[]) as subject, "
        "unnest($t::varchar[]) as body_text, unnest($h::varchar[]) as body_html) as t "
        "where outbox_emails.email_key = t.email_key and outbox_emails.body_text is null"
    )
    params = {
        "k": [e.message_key for e in emails],
        "s": [e.subject for e in emails],
        "t": [e.text for e in emails],
        "h": [e.html for e in emails],
    }
    if len(batch.email_row_ids) != len(emails):
        con.execute(sql, params)
    else:
        _by_rowid(con, sql, "outbox_emails", batch.email_row_ids, params)


# an outcome's row status and failure; in doubt stays `sending` (docs/emails.md)
_STATUS = {"sent": "sent", "failed": "failed", "unknown": "sending", "not_sent": "pending"}
_EVENT = {
    "sent": "message_sent",
    "failed": "message_failed",
    "unknown": "message_outcome_unknown",
    "not_sent": "message_not_sent",
}
IN_DOUBT_ERROR = (
    "in doubt: the request went out and no answer came ({error}); looked up in SendGrid's "
    "Email Activity by message_key before any resend (docs/emails.md)"
)


def record(
    con: duckdb.DuckDBPyConnection,
    done: Sequence[tuple[Batch, list[SendOutcome]]],
    *,
    run_id: str,
    now: datetime,
) -> dict[str, int]:
    """Record the outcomes of the requests that came back and audit each message, in one transaction."""
    counts = {"sent": 0, "failed": 0, "unknown": 0, "not_sent": 0}
    cols: dict[str, list[Any]] = {k: [] for k in ("ek", "s", "f", "pid", "e", "a")}
    events: list[audit.AuditEvent] = []
    for batch, outcomes in done:
        carried = {e.message_key: e.carries for e in batch.emails}
        for o in outcomes:
            failure = None
            error = o.error
            if o.status == "unknown":
                failure = "unknown"
                error = IN_DOUBT_ERROR.format(error=o.error)
            elif o.status == "failed":
                failure = "transient" if o.retryable else "permanent"
            n = len(carried[o.message_key])
            counts[o.status] += n
            values = (o.message_key, _STATUS[o.status], failure, o.provider_message_id, error)
            for col, val in zip(cols, (*values, o.attempts), strict=True):
                cols[col].append(val)
            details = {
                "provider_message_id": o.provider_message_id,
                "attempts": o.attempts,
                "error": error,
                "email_key": o.message_key,
            }
            if failure:
                details["failure"] = failure
            events.extend(
                audit.AuditEvent(_EVENT[o.status], "message", k, details)
                for k in carried[o.message_key]
            )
    res = pa.table(
        cols,
        schema=pa.schema(
            [*[(c, pa.string()) for c in ("ek", "s", "f", "pid", "e")], ("a", pa.int64())]
        ),
    )
    sql = (
        "update outbox set status = r.s, failure = r.f, provider_message_id = r.pid, "
        "last_error = r.e, attempts = outbox.attempts - 1 + r.a, "
        "sent_at = case when r.s = 'sent' then $t end, "
        "unknown_since = case when r.f = 'unknown' then $t end "
        "from res r where outbox.email_key = r.ek"
    )
    row_ids = [i for batch, _ in done for i in batch.row_ids]
    con.register("res", res)
    try:
        with store.transaction(con):
            if _by_rowid(con, sql, "outbox", row_ids, {"t": now}) != len(row_ids):
                con.execute(sql, {"t": now})
            audit.append(con, run_id, sorted(events, key=lambda ev: ev.entity_id), logged_at=now)
    finally:
        con.unregister("res")
    return counts
