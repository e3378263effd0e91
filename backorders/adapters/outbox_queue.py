"""Queueing: one message per order event (at most once), grouped one email per customer.

Set-based in one transaction (sql/outbox/new_messages.sql, new_emails.sql, insert_*.sql):
a message's key is deterministic (domain.messages.message_key), so a rerun, a retry or a
crash can only find the row already there; queueing is derived from line_status against
what the outbox already told, so a run that dies before queueing leaves the same
candidates for the next run (docs/emails.md). No text is stored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import get_args

import duckdb

from backorders.adapters import audit, message_sql, store
from backorders.domain.messages import MessageKind, Policy

MAX_MESSAGES_PER_EMAIL = 100  # custom_args (message_keys) are capped at 10,000 bytes
QUEUED_EVENT = "messages_queued"  # one audit row per queueing, with a digest (docs/emails.md)


@dataclass
class QueueResult:
    """How many messages this run queued, by kind, and how many were suppressed."""

    queued: int
    suppressed: int
    by_kind: dict[str, int]
    emails: int = 0
    suppressed_by_reason: dict[str, int] = field(default_factory=dict)


def queue_messages(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    now: datetime,
    dry_run: bool,
    policy: Policy | None = None,
    today: date | None = None,
) -> QueueResult:
    """Queue the messages that this run's changes deserve (idempotent by message key).

    Set-based, in one transaction (sql/outbox): choose each order's message, key it, drop
    the keys already in the outbox, group one email per customer, insert the messages and
    the emails, and audit one `messages_queued` row with a digest of what was queued
    (docs/emails.md). No text is rendered here: EmailRenderer renders the emails from
    what is queued when they are sent, and on demand (`backorders emails`).
    """
    policy = policy or Policy()
    with store.transaction(con):
        store.run(
            con,
            "outbox/new_messages",
            {
                "today": today or now.date(),
                "max_wait_days": policy.max_wait_days,
                "delay_apology_days": policy.delay_apology_days,
                "dry_run": dry_run,
                "bad_address_chars": message_sql.bad_address_chars(),
            },
        )
        store.run(
            con,
            "outbox/new_emails",
            {"max_per_email": MAX_MESSAGES_PER_EMAIL, "kinds": sorted(get_args(MessageKind))},
        )
        result = _counts(con)
        if result.queued + result.suppressed:
            store.run(con, "outbox/insert_messages", {"now": now, "run_id": run_id})
            store.run(con, "outbox/insert_emails", {"now": now})
            audit.append(con, run_id, [_queued_event(con, run_id, result)], logged_at=now)
        message_sql.drop_temp_tables(con)
    return result


def _counts(con: duckdb.DuckDBPyConnection) -> QueueResult:
    """What queue_new holds: messages by kind and status, suppression reasons, emails."""
    by_kind: dict[str, int] = {}
    reasons: dict[str, int] = {}
    queued = suppressed = 0
    for kind, reason, n in con.execute(
        "select kind, reason, count(*) from queue_new group by all order by all"
    ).fetchall():
        by_kind[kind] = by_kind.get(kind, 0) + n
        if reason is None:
            queued += n
        else:
            suppressed += n
            reasons[reason] = reasons.get(reason, 0) + n
    emails, repeated = con.execute(
        "select (select count(*) from queue_emails), count(*) - count(distinct message_key) "
        "from queue_new"
    ).fetchone() or (0, 0)
    if repeated:
        # one message per order: only a key repeated in the orders or customers feed
        # (which the ingest and the feed suites keep unique) can make two
        raise ValueError(
            f"{repeated} message key(s) would be queued twice: orders or customers hold a "
            "repeated key; run the feed expectations and fix the feed before queueing"
        )
    return QueueResult(queued, suppressed, by_kind, int(emails or 0), reasons)


def _queued_event(
    con: duckdb.DuckDBPyConnection, run_id: str, result: QueueResult
) -> audit.AuditEvent:
    """One audit row for the run's queued messages: counts and a digest of the rows."""
    row = store.run(con, "outbox/queued_digest", {"run_id": run_id}).fetchone()
    assert row is not None  # an aggregate: always one row
    digest, messages, emails = row
    return audit.AuditEvent(
        QUEUED_EVENT,
        "run",
        run_id,
        {
            "digest": digest,
            "run_messages": messages,
            "run_emails": emails,
            "queued": result.queued,
            "suppressed": result.suppressed,
            "emails": result.emails,
            "by_kind": result.by_kind,
            "suppressed_by_reason": result.suppressed_by_reason,
        },
    )
