"""The send pass: render the pending emails a chunk ahead and send them, a few requests at a time.

Sending moves an email's rows pending -> sending (committed before the request goes out)
-> sent | failed; a 'transient' failure (SendGrid surely did not accept it) is retried by
later passes until its attempts reach the retry budget. Rows found `sending` at the start
of a pass are settled first (outbox_doubt).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import duckdb

from backorders import interrupt
from backorders.adapters import store
from backorders.adapters.outbox_batches import Batch, load_sendable, rendered_batches
from backorders.adapters.outbox_doubt import mark_unknown_left_sending, resolve_unknown_outcomes
from backorders.adapters.outbox_records import keep_texts, record, set_sending
from backorders.domain.email import OutgoingEmail, SendOutcome
from backorders.settings import Settings

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 2.0  # a progress line at most this often (and one at the end)


class Sender(Protocol):
    """Anything that sends emails and says what happened to each (SendGridSender, a fake)."""

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """Send these emails (in as few requests as it likes); one outcome per email."""
        ...


@dataclass
class SendResult:
    """What one send pass did, counted in messages (outbox rows).

    ``sent``, ``failed`` (this pass), ``unknown`` (became in doubt in this pass: still
    `sending`, flagged for the Email Activity lookup or a person), ``not_sent`` (handed to
    the sender, nothing accepted, back to `pending`: a stop request or a refused key),
    ``not_attempted`` (never handed to the sender because sending stopped). How earlier
    doubt was settled is in plain attributes, not fields: ``resolved`` (found in SendGrid's
    Email Activity: sent), ``requeued`` (not in the feed after the settle delay: sent
    again), ``unresolved`` (still in doubt after the pass); ``stopped`` says why sending
    stopped early (None: it did not).
    """

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    not_sent: int = 0
    not_attempted: int = 0

    def __post_init__(self) -> None:
        self.resolved = 0
        self.requeued = 0
        self.unresolved = 0
        self.stopped: str | None = None

    @property
    def failures(self) -> int:
        """Messages of this pass that did not go out: failed, in doubt, or left unsent."""
        return self.failed + self.unknown + self.not_sent + self.not_attempted


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
    concurrency: int = 16,
    retry_budget: int = 20,
    options: SendOptions | None = None,
) -> SendResult:
    """Send every pending email once (and retry transient failures); record and audit each.

    First, rows left `sending` by a stopped process are flagged in doubt, and doubt is
    looked up in SendGrid's Email Activity (found: sent; not found after the settle delay:
    pending again, sent below; otherwise they stay in doubt). Then up to `concurrency`
    requests are in flight: one per rendered email, up to `batch_size` emails of one
    dynamic template together. Each request's emails are marked `sending` in one
    transaction just before it goes out, so a crash leaves at most `concurrency`
    requests in doubt; outcomes are recorded as requests come back. Before each request
    the loop checks for a stop request (backorders.interrupt) and for a sender that
    stopped (a refused API key): then it dispatches nothing more, waits for the requests
    in flight and records them; what was not dispatched stays `pending`.
    `options` None: SendOptions.from_settings() (defaults, settings file, environment).
    """
    opts = options if options is not None else SendOptions.from_settings()
    result = SendResult()
    mark_unknown_left_sending(con, run_id=run_id, now=now())
    if opts.resolve_unknown:
        resolve_unknown_outcomes(con, sender, result, run_id=run_id, now=now, opts=opts)
    todo = load_sendable(con, retry_budget)
    total = sum(len(t.message_keys) for t in todo)
    dispatched = 0
    report = _Progress(progress, total)
    requests = rendered_batches(con, todo, batch_size, opts)
    inflight: dict[Future[list[SendOutcome]], Batch] = {}
    width = max(1, concurrency)
    with (
        contextlib.closing(requests),
        ThreadPoolExecutor(max_workers=width, thread_name_prefix="send") as pool,
    ):

        def dispatch() -> None:
            """Fill the free slots: mark their requests `sending` in one transaction, send."""
            nonlocal dispatched
            result.stopped = result.stopped or _stop_reason(sender)
            if result.stopped is not None:
                return
            batches = []
            for _ in range(width - len(inflight)):
                batch = next(requests, None)
                if batch is None:
                    break
                batches.append(batch)
            if not batches:
                return
            with store.transaction(con):
                set_sending(con, _joined(batches))
                keep_texts(con, _joined(batches))
            for batch in batches:
                inflight[pool.submit(_send_safely, sender, batch.emails)] = batch
                dispatched += sum(len(e.carries) for e in batch.emails)

        dispatch()
        while inflight:
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            done = [(inflight.pop(f), f.result()) for f in finished]
            counts = record(con, done, run_id=run_id, now=now())
            for name, n in counts.items():  # messages: sent, failed, unknown, not_sent
                setattr(result, name, getattr(result, name) + n)
            report(result, final=False)
            dispatch()
    result.not_attempted = total - dispatched
    row = con.execute(
        "select count(*) from outbox where status = 'sending' and failure = 'unknown'"
    ).fetchone()
    result.unresolved = int(row[0]) if row else 0
    report(result, final=True)
    return result


def _joined(batches: Sequence[Batch]) -> Batch:
    """Several requests' emails and rowids as one, for the transaction that marks them."""
    if len(batches) == 1:
        return batches[0]
    out = Batch([])
    for b in batches:
        out.emails.extend(b.emails)
        out.keys.extend(b.keys)
        out.row_ids.extend(b.row_ids)
        out.email_row_ids.extend(b.email_row_ids)
    if any(len(b.email_row_ids) != len(b.emails) for b in batches):
        out.email_row_ids = []  # some lack rowids: update by key
    return out


def _stop_reason(sender: Sender) -> str | None:
    """Why no more requests go out: a stop request, or the sender stopped (a refused key)."""
    if interrupt.requested():
        return "a stop was requested (SIGTERM or SIGINT)"
    reason = getattr(sender, "stop_reason", None)
    return reason if isinstance(reason, str) else None


class _Progress:
    """The send pass's progress lines: sent, failed, in doubt, not yet sent; every 2 s."""

    def __init__(self, progress: Callable[[str], None], total: int) -> None:
        self.progress = progress
        self.total = total
        self.last = time.monotonic()

    def __call__(self, r: SendResult, *, final: bool) -> None:
        t = time.monotonic()
        if not final and t - self.last < PROGRESS_EVERY_S:
            return
        self.last = t
        settled = r.sent + r.failed + r.unknown
        line = (
            f"sent {r.sent}/{self.total} messages, {r.failed} failed, {r.unknown} in doubt, "
            f"{self.total - settled} {'not sent' if final else 'to go'}"
        )
        if final and r.stopped:
            line += f" (sending stopped: {r.stopped})"
        self.progress(line)


def _send_safely(sender: Sender, emails: list[OutgoingEmail]) -> list[SendOutcome]:
    """The sender's outcomes; an unexpected error makes the whole request 'unknown'."""
    try:
        return sender.send_batch(emails)
    except Exception as exc:  # a bug or an odd transport error: the request may be out
        log.exception("send_batch raised; treating the batch's outcome as unknown")
        error = f"sender raised {type(exc).__name__}; outcome unknown"
        return [SendOutcome(e.message_key, "unknown", None, error, 1) for e in emails]
