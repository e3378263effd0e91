"""The send pass: render the pending emails a chunk ahead and send them, a few requests at a time.

Sending moves an email's rows pending -> sending (committed before the request goes out)
-> sent | failed; a 'transient' failure (SendGrid surely did not accept it) is retried by
later passes until its attempts reach the retry budget. Rows found `sending` at the start
of a pass are settled first (outbox_doubt).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from backorders.adapters import audit, store
from backorders.adapters.outbox_batches import Batch, load_sendable, rendered_batches
from backorders.adapters.outbox_doubt import mark_unknown_left_sending, resolve_unknown_outcomes
from backorders.domain.email import OutgoingEmail, SendOutcome
from backorders.settings import Settings

log = logging.getLogger(__name__)


class Sender(Protocol):
    """Anything that sends emails and says what happened to each (SendGridSender, a fake)."""

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """Send these emails (in as few requests as it likes); one outcome per email."""
        ...


@dataclass
class SendResult:
    """What one send pass did, counted in messages (outbox rows).

    How unknown outcomes were settled is in plain attributes, not fields, so that
    ``asdict()`` (the run summary's `sent` entry) keeps its shape: ``resolved`` (unknown ->
    sent: found in SendGrid's Email Activity), ``requeued`` (unknown -> pending: not in the
    feed after the settle delay; sent again), ``unresolved`` (still unknown after the pass).
    """

    sent: int = 0
    failed: int = 0
    unknown: int = 0  # became unknown in this pass

    def __post_init__(self) -> None:
        self.resolved = 0
        self.requeued = 0
        self.unresolved = 0


@dataclass(frozen=True)
class SendOptions:
    """How a send pass uses SendGrid beyond Mail Send: dynamic templates, Email Activity.

    ``template_ids`` maps a message kind (or ``combined``) to a ``d-...`` template id;
    ``discount_code`` goes into a delay apology's template data. Unknown outcomes are
    looked up in the Email Activity feed when ``resolve_unknown`` (see docs/emails.md).
    """

    template_ids: Mapping[str, str] = field(default_factory=dict)
    discount_code: str = ""
    resolve_unknown: bool = True
    settle_s: float = 1800.0
    keys_per_query: int = 50
    max_queries: int = 20

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SendOptions:
        """The options from the settings (loaded from defaults, file and environment if None)."""
        if settings is None:
            from backorders.settings import load_settings

            settings = load_settings()
        return cls(
            template_ids=dict(settings.sendgrid_template_ids),
            discount_code=settings.discount_code,
            resolve_unknown=settings.activity_lookup,
            settle_s=settings.activity_settle_s,
            keys_per_query=settings.activity_keys_per_query,
            max_queries=settings.activity_max_queries,
        )


def send_pending(
    con: duckdb.DuckDBPyConnection,
    sender: Sender,
    *,
    run_id: str,
    now: Callable[[], datetime],
    progress: Callable[[str], None] = log.info,
    batch_size: int = 500,
    concurrency: int = 2,
    retry_budget: int = 20,
    options: SendOptions | None = None,
) -> SendResult:
    """Send every pending email once (and retry transient failures); record and audit each.

    First, rows left `sending` by a stopped process become unknown, and unknown outcomes
    are looked up in SendGrid's Email Activity (found: sent; not found after the settle
    delay: pending again, sent below; otherwise they stay unknown). Then up to
    `concurrency` requests of up to `batch_size` emails are in flight; each batch is marked
    `sending` in one transaction before its request and its outcomes recorded in one
    transaction after, so a crash leaves at most `concurrency` batches in doubt.
    `options` None: SendOptions.from_settings() (defaults, settings file, environment).
    """
    opts = options if options is not None else SendOptions.from_settings()
    result = SendResult()
    mark_unknown_left_sending(con, run_id=run_id, now=now())
    if opts.resolve_unknown:
        resolve_unknown_outcomes(con, sender, result, run_id=run_id, now=now, opts=opts)
    todo = load_sendable(con, retry_budget)
    total = sum(len(t.message_keys) for t in todo)
    done = 0
    pending_batches = rendered_batches(con, todo, batch_size, opts)
    inflight: dict[Future[list[SendOutcome]], Batch] = {}
    with (
        contextlib.closing(pending_batches),
        ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="send") as pool,
    ):

        def submit_next() -> None:
            batch = next(pending_batches, None)
            if batch is None:
                return
            with store.transaction(con):
                _set_sending(con, batch.keys)
                _keep_texts(con, batch.emails)
            inflight[pool.submit(_send_safely, sender, batch.emails)] = batch

        for _ in range(max(1, concurrency)):
            submit_next()
        while inflight:
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in finished:
                batch = inflight.pop(fut)
                counts = _record(con, batch, fut.result(), run_id=run_id, now=now())
                result.sent += counts.sent
                result.failed += counts.failed
                result.unknown += counts.unknown
                done += sum(len(e.carries) for e in batch.emails)
                progress(f"sent {done}/{total} messages")
                submit_next()
    row = con.execute(
        "select count(*) from outbox where status = 'failed' and failure = 'unknown'"
    ).fetchone()
    result.unresolved = int(row[0]) if row else 0
    return result


def _send_safely(sender: Sender, emails: list[OutgoingEmail]) -> list[SendOutcome]:
    """The sender's outcomes; an unexpected error makes the whole batch 'unknown'."""
    try:
        return sender.send_batch(emails)
    except Exception as exc:  # a bug or an odd transport error: the request may be out
        log.exception("send_batch raised; treating the batch's outcome as unknown")
        error = f"sender raised {type(exc).__name__}; outcome unknown"
        return [SendOutcome(e.message_key, "unknown", None, error, 1) for e in emails]


def _set_sending(con: duckdb.DuckDBPyConnection, email_keys: list[str]) -> None:
    """Mark a batch's messages `sending` (one more attempt) before its request goes out."""
    con.execute(
        "update outbox set status = 'sending', failure = null, unknown_since = null, "
        "attempts = attempts + 1 where email_key in (select unnest($k::varchar[]))",
        {"k": email_keys},
    )


def _keep_texts(con: duckdb.DuckDBPyConnection, emails: list[OutgoingEmail]) -> None:
    """Store each email's texts as its first request goes out, in the same transaction.

    Queueing stores no text (migration 008), but what a customer was sent must stay on
    record: the texts are written once, when first sent, so `backorders emails` shows
    them as sent, and a retry or a requeue sends the same words again (EmailRenderer
    returns stored texts as they are). For a dynamic-template email they are the
    rendered fallback of the same state its template data was built from.
    """
    con.execute(
        "update outbox_emails as e set subject = t.subject, body_text = t.body_text, "
        "body_html = t.body_html "
        "from (select unnest($k::varchar[]) as email_key, unnest($s::varchar[]) as subject, "
        "unnest($t::varchar[]) as body_text, unnest($h::varchar[]) as body_html) as t "
        "where e.email_key = t.email_key and e.body_text is null",
        {
            "k": [e.message_key for e in emails],
            "s": [e.subject for e in emails],
            "t": [e.text for e in emails],
            "h": [e.html for e in emails],
        },
    )


_STATUS = {"sent": "sent", "failed": "failed", "unknown": "failed"}


def _record(
    con: duckdb.DuckDBPyConnection,
    batch: Batch,
    outcomes: list[SendOutcome],
    *,
    run_id: str,
    now: datetime,
) -> SendResult:
    """Record a batch's outcomes and audit each message, in one transaction."""
    counts = SendResult()
    carried = {e.message_key: e.carries for e in batch.emails}
    cols: dict[str, list[Any]] = {k: [] for k in ("ek", "s", "f", "pid", "e", "a")}
    events: list[audit.AuditEvent] = []
    for o in outcomes:
        status = _STATUS[o.status]
        failure = None
        error = o.error
        if o.status == "unknown":
            failure = "unknown"
            error = f"outcome unknown, looked up in SendGrid's Email Activity before any resend: {o.error}"
        elif o.status == "failed":
            failure = "transient" if o.retryable else "permanent"
        n = len(carried[o.message_key])
        if o.status == "sent":
            counts.sent += n
        elif o.status == "unknown":
            counts.unknown += n
        else:
            counts.failed += n
        for col, val in zip(
            cols,
            (o.message_key, status, failure, o.provider_message_id, error, o.attempts),
            strict=True,
        ):
            cols[col].append(val)
        event = "message_outcome_unknown" if o.status == "unknown" else f"message_{status}"
        details = {
            "provider_message_id": o.provider_message_id,
            "attempts": o.attempts,
            "error": error,
            "email_key": o.message_key,
        }
        if failure:
            details["failure"] = failure
        events.extend(
            audit.AuditEvent(event, "message", k, details) for k in carried[o.message_key]
        )
    res = pa.table(  # noqa: F841  (scanned by DuckDB below)
        cols,
        schema=pa.schema(
            [*[(c, pa.string()) for c in ("ek", "s", "f", "pid", "e")], ("a", pa.int64())]
        ),
    )
    with store.transaction(con):
        con.execute(
            "update outbox set status = r.s, failure = r.f, provider_message_id = r.pid, "
            "last_error = r.e, attempts = outbox.attempts - 1 + r.a, "
            "sent_at = case when r.s = 'sent' then $t end, "
            "unknown_since = case when r.f = 'unknown' then $t end "
            "from res r where outbox.email_key = r.ek",
            {"t": now},
        )
        audit.append(con, run_id, sorted(events, key=lambda ev: ev.entity_id), logged_at=now)
    return counts
