"""In-doubt sends: rows a stopped sender left `sending`, settled through Email Activity.

SendGrid has no idempotency key, so a request whose answer never came is not resent
blindly: its emails are looked up in SendGrid's Email Activity by message_key (found:
sent; not found once the feed has had time to catch up: pending again; lookup
unavailable: left for a person). See docs/emails.md, "Unknown outcomes".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa

from backorders.adapters import audit, store
from backorders.domain.email import ActivityLookup, resolve_unknown

if TYPE_CHECKING:
    from backorders.adapters.outbox_send import Sender, SendOptions, SendResult

log = logging.getLogger(__name__)
MAX_ERROR = 500


class ActivitySender(Protocol):
    """A sender that can also look emails up in SendGrid's Email Activity (SendGridSender)."""

    def lookup_activity(
        self, emails: Sequence[tuple[str, str]], *, keys_per_query: int, max_queries: int
    ) -> ActivityLookup:
        """Which of these (email key, recipient) SendGrid's activity feed lists."""
        ...


def mark_unknown_left_sending(
    con: duckdb.DuckDBPyConnection, *, run_id: str, now: datetime
) -> None:
    """Rows left `sending` by a stopped process: in doubt since now (never resent blindly).

    They stay `sending` (never `failed`: SendGrid may have accepted them) with failure
    'unknown', unknown_since and a last_error that tells a person what to check.

    This process opened the DuckDB file, so the one that marked them `sending` has stopped
    (one writer at a time): no request for them can leave after `now`.
    """
    with store.transaction(con):
        stuck = con.execute(
            "update outbox set failure = 'unknown', unknown_since = $now, "
            "last_error = 'in doubt: the sending process stopped while this request was in "
            "flight, so SendGrid may or may not have it; looked up in SendGrid''s Email "
            "Activity by message_key before any resend; if the lookup is not available, "
            "check the activity for this message_key and requeue it if absent (docs/emails.md)' "
            "where status = 'sending' and failure is distinct from 'unknown' "
            "returning message_key, email_key",
            {"now": now},
        ).fetchall()
        audit.append(
            con,
            run_id,
            [
                audit.AuditEvent("message_outcome_unknown", "message", k, {"email_key": ek})
                for k, ek in sorted(stuck)
            ],
            logged_at=now,
        )


def resolve_unknown_outcomes(
    con: duckdb.DuckDBPyConnection,
    sender: Sender,
    result: SendResult,
    *,
    run_id: str,
    now: Callable[[], datetime],
    opts: SendOptions,
) -> None:
    """Look unknown emails up in SendGrid's Email Activity; record and audit each resolution.

    Found: `sent` with SendGrid's per-message msg_id. Not found although the feed has had
    `opts.settle_s` since the outcome became unknown: `pending` again (sent by this pass).
    Not found yet: left unknown for the next pass. Lookup unavailable or failing: left
    unknown for a person, with the reason in last_error.
    """
    lookup_activity = getattr(sender, "lookup_activity", None)
    if lookup_activity is None:
        return
    rows = con.execute(
        "select o.email_key, any_value(e.to_email), min(o.unknown_since), "
        "list(o.message_key order by o.message_key) "
        "from outbox o join outbox_emails e using (email_key) "
        "where o.status = 'sending' and o.failure = 'unknown' "
        "group by o.email_key order by o.email_key"
    ).fetchall()
    if not rows:
        return
    looked_up_at = now()
    try:
        lookup: ActivityLookup = lookup_activity(
            [(ek, to) for ek, to, _, _ in rows],
            keys_per_query=opts.keys_per_query,
            max_queries=opts.max_queries,
        )
    except Exception as exc:  # a bug in the lookup must not stop sending
        log.exception("Email Activity lookup raised; unknown outcomes stay unknown")
        lookup = ActivityLookup(error=f"lookup raised {type(exc).__name__}")
    if lookup.error:
        log.warning("Email Activity lookup: %s", lookup.error)
    cols: dict[str, list[Any]] = {k: [] for k in ("ek", "s", "pid", "e", "t")}
    events: list[audit.AuditEvent] = []
    for email_key, _to, since, keys in rows:
        decision = resolve_unknown(
            email_key,
            lookup,
            unknown_since=since or looked_up_at,
            looked_up_at=looked_up_at,
            settle_s=opts.settle_s,
        )
        if decision == "sent":
            msg_id = lookup.found[email_key] or None
            values = ("sent", msg_id, None, since or looked_up_at)
            result.resolved += len(keys)
            details: dict[str, Any] = {
                "provider_message_id": msg_id,
                "email_key": email_key,
                "resolved_by": "email_activity",
            }
            events.extend(audit.AuditEvent("message_sent", "message", k, details) for k in keys)
        elif decision == "requeue":
            error = (
                f"requeued: not in SendGrid's Email Activity {opts.settle_s:g} s after the "
                "outcome became unknown, so SendGrid never accepted it"
            )
            values = ("pending", None, error, None)
            result.requeued += len(keys)
            details = {"email_key": email_key, "reason": error, "resolved_by": "email_activity"}
            events.extend(audit.AuditEvent("message_requeued", "message", k, details) for k in keys)
        elif decision == "unresolved" and lookup.error:
            error = (
                f"outcome unknown; Email Activity lookup did not answer ({lookup.error}): "
                "check SendGrid's activity for this message_key, then requeue if absent"
            )
            values = ("sending", None, error[:MAX_ERROR], None)
        else:  # "wait": the feed may not list it yet; look again next pass
            continue
        for col, val in zip(cols, (email_key, *values), strict=True):
            cols[col].append(val)
    if not cols["ek"]:
        return
    res = pa.table(  # noqa: F841  (scanned by DuckDB below)
        cols,
        schema=pa.schema(
            [*[(c, pa.string()) for c in ("ek", "s", "pid", "e")], ("t", pa.timestamp("us", "UTC"))]
        ),
    )
    with store.transaction(con):
        con.execute(
            "update outbox set status = r.s, "
            "failure = case when r.s = 'sending' then 'unknown' end, "
            "provider_message_id = coalesce(r.pid, outbox.provider_message_id), "
            "last_error = r.e, sent_at = r.t, "
            "unknown_since = case when r.s = 'sending' then outbox.unknown_since end "
            "from res r where outbox.email_key = r.ek "
            "and outbox.status = 'sending' and outbox.failure = 'unknown'"
        )
        audit.append(
            con, run_id, sorted(events, key=lambda ev: ev.entity_id), logged_at=looked_up_at
        )
