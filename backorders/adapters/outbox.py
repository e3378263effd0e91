"""The notifications outbox: queue one message per order event (at most once), then send.

A message's key is deterministic (domain.messages.message_key), so a rerun, a
retry or a crash can only find the row already there, never add a second one.
Queueing is derived from line_status against what the outbox already told, so it
is crash-safe: a run that dies after allocating and before queueing leaves the
same candidates for the next run (docs/emails.md).

One customer's new messages of one run travel in one email (outbox_emails); the
messages of an email always share their status. Queueing writes what was decided, not
text: EmailRenderer renders the emails from it when they are sent and on demand. Sending moves an email's rows
pending -> sending (committed before the request goes out) -> sent | failed, many
emails per request (personalizations) and a few requests at a time. A row found
in `sending` at the start of a send belongs to a process that stopped mid-request:
SendGrid may or may not have it, and SendGrid has no idempotency key, so it is not
resent blindly: it is marked failed with failure = 'unknown' and looked up in SendGrid's
Email Activity by its key (found: sent; not found once the feed has had time to catch
up: pending again; lookup unavailable: left for a person). A 'transient' failure (SendGrid surely did not accept it) is retried by later
passes until its attempts reach the retry budget.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import tomllib
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, get_args

import duckdb
import pyarrow as pa

from backorders.adapters import audit, message_sql, store
from backorders.domain.email import (
    COMBINED_TEMPLATE,
    MAX_TEMPLATE_DATA_BYTES,
    ActivityLookup,
    OutgoingEmail,
    SendOutcome,
    resolve_unknown,
    safe_header_value,
    template_data_bytes,
)
from backorders.domain.messages import (
    Layout,
    MessageKind,
    OrderState,
    Policy,
    Rendered,
    Templates,
    format_date,
)
from backorders.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)
TEMPLATE_DIR = PROJECT_ROOT / "config" / "templates"
MAX_MESSAGES_PER_EMAIL = 100  # custom_args (message_keys) are capped at 10,000 bytes
RENDER_CHUNK_BATCHES = 10  # the sender renders this many batches' emails at a time
QUEUED_EVENT = "messages_queued"  # one audit row per queueing, with a digest (docs/emails.md)


class Sender(Protocol):
    """Anything that sends emails and says what happened to each (SendGridSender, a fake)."""

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """Send these emails (in as few requests as it likes); one outcome per email."""
        ...


def load_templates(folder: Path = TEMPLATE_DIR) -> dict[str, Templates]:
    """Read config/templates/<kind>.toml for every kind (files starting with _ are not kinds)."""
    out = {}
    for p in sorted(folder.glob("*.toml")):
        if p.name.startswith("_"):
            continue
        with p.open("rb") as fh:
            d = tomllib.load(fh)
        out[p.stem] = Templates(d["subject"], d["text"].strip() + "\n", d["html"].strip() + "\n")
    return out


def load_layout(folder: Path = TEMPLATE_DIR) -> Layout:
    """Read config/templates/_layout.toml: greeting, sections, sign-off."""
    with (folder / "_layout.toml").open("rb") as fh:
        d = tomllib.load(fh)
    return Layout(d["subject_many"], d["text"].strip() + "\n", d["html"].strip() + "\n")


@dataclass
class QueueResult:
    """How many messages this run queued, by kind, and how many were suppressed."""

    queued: int
    suppressed: int
    by_kind: dict[str, int]
    emails: int = 0
    suppressed_by_reason: dict[str, int] = field(default_factory=dict)


_REASONS = {
    "not_backorderable": "an item in your order is no longer available and cannot be backordered",
    "backordered": "your order would take longer to arrive than we think is fair to ask",
}


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


class EmailRenderer:
    """Renders queued emails and messages from what the outbox holds, set-based in DuckDB.

    What a message tells (kind, order, condition and promised date) comes from its outbox
    row (`state`, as queued), the customer's name from outbox_emails.to_name (as queued),
    the date style from the customer's locale, the lines from line_status (open lines,
    with in-stock substitutes from supply_lots) and the texts from config/templates, as
    backorders.domain.messages.render and compose do (tests/integration/test_outbox_sql.py
    checks the two are equal). Rows queued before migration 008 kept their rendered texts:
    those are returned as stored. The sender renders each chunk of emails just before its
    requests; `backorders emails` renders them for a person to read. The locale texts are
    built once per renderer (line_status does not change while it is used); close() drops
    its temp tables.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        discount_code: str = "",
        templates: Mapping[str, Templates] | None = None,
        layout: Layout | None = None,
    ) -> None:
        self.con = con
        self.sql = message_sql.Renderer(
            templates if templates is not None else load_templates(),
            layout if layout is not None else load_layout(),
            reasons=_REASONS,
            discount_code=discount_code,
        )
        self._texts = False  # the locale texts are built (once per renderer)

    def emails(self, email_keys: Sequence[str]) -> dict[str, Rendered]:
        """Subject, text and HTML of each of these emails (outbox_emails keys; unknown: absent)."""
        return self._render(
            email_keys,
            stored="select email_key, subject, body_text, body_html from outbox_emails "
            "where body_text is not null and email_key in (select k from render_keys)",
            source="select o.message_key, o.order_id, o.kind, o.state, e.email_key, "
            "len(e.message_keys) as email_size, e.to_name, e.customer_id "
            "from outbox_emails as e join outbox as o using (email_key) "
            "where e.body_text is null and e.email_key in (select k from render_keys)",
            query=self.sql.render_emails,
        )

    def messages(self, message_keys: Sequence[str]) -> dict[str, Rendered]:
        """What each of these messages says on its own: its section framed alone."""
        return self._render(
            message_keys,
            stored="select message_key, subject, body_text, body_html from outbox "
            "where body_text is not null and message_key in (select k from render_keys)",
            source="select o.message_key, o.order_id, o.kind, o.state, o.email_key, "
            "1 as email_size, e.to_name, o.customer_id "
            "from outbox as o left join outbox_emails as e using (email_key) "
            "where o.body_text is null and o.message_key in (select k from render_keys)",
            query=self.sql.render_messages,
        )

    def _render(
        self,
        keys: Sequence[str],
        *,
        stored: str,
        source: str,
        query: Callable[[], tuple[str, dict[str, Any]]],
    ) -> dict[str, Rendered]:
        """The stored texts of these keys, and the rest rendered: source's messages staged in
        render_msgs, their sections in render_sections, then the query over them."""
        con = self.con
        con.execute(
            "create or replace temp table render_keys as "
            "select distinct unnest($k::varchar[]) as k",
            {"k": list(keys)},
        )
        out = {
            k: Rendered(subj, text, html_)
            for k, subj, text, html_ in con.execute(stored).fetchall()
        }
        con.execute(
            "create or replace temp table render_msgs as "
            "select row_number() over () as msg_no, s.message_key, s.order_id, s.kind, "
            "json_extract_string(s.state, '$.condition') as condition, "
            "json_extract_string(s.state, '$.promised_date')::date as promised_date, "
            "s.email_key, s.email_size, s.to_name, cu.locale "
            f"from ({source}) as s left join customers as cu using (customer_id)"
        )
        row = con.execute("select count(*) from render_msgs").fetchone()
        if not (row and row[0]):
            return out
        if not self._texts:
            message_sql.fill_text_tables(con)
            self._texts = True
        message_sql.add_message_dates(con)
        con.execute(*self.sql.stage_sections())
        sql, params = query()
        for k, subj, text, html_ in con.execute(sql, params).fetchall():
            out[k] = Rendered(subj, text, html_)
        return out

    def close(self) -> None:
        """Drop the renderer's temp tables."""
        message_sql.drop_temp_tables(self.con)


def render_emails(
    con: duckdb.DuckDBPyConnection, email_keys: Sequence[str], *, discount_code: str = ""
) -> dict[str, Rendered]:
    """The emails with these keys as they would be (or were) sent (see EmailRenderer)."""
    with contextlib.closing(EmailRenderer(con, discount_code=discount_code)) as renderer:
        return renderer.emails(email_keys)


def render_messages(
    con: duckdb.DuckDBPyConnection, message_keys: Sequence[str], *, discount_code: str = ""
) -> dict[str, Rendered]:
    """What each of these messages says on its own (see EmailRenderer)."""
    with contextlib.closing(EmailRenderer(con, discount_code=discount_code)) as renderer:
        return renderer.messages(message_keys)


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


class ActivitySender(Protocol):
    """A sender that can also look emails up in SendGrid's Email Activity (SendGridSender)."""

    def lookup_activity(
        self, emails: Sequence[tuple[str, str]], *, keys_per_query: int, max_queries: int
    ) -> ActivityLookup:
        """Which of these (email key, recipient) SendGrid's activity feed lists."""
        ...


@dataclass
class _Batch:
    emails: list[OutgoingEmail]
    keys: list[str] = field(default_factory=list)  # email keys


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
    _mark_unknown_left_sending(con, run_id=run_id, now=now())
    if opts.resolve_unknown:
        _resolve_unknown(con, sender, result, run_id=run_id, now=now, opts=opts)
    todo = _load_sendable(con, retry_budget)
    total = sum(len(t.message_keys) for t in todo)
    done = 0
    pending_batches = _rendered_batches(con, todo, batch_size, opts)
    inflight: dict[Future[list[SendOutcome]], _Batch] = {}
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


def _mark_unknown_left_sending(
    con: duckdb.DuckDBPyConnection, *, run_id: str, now: datetime
) -> None:
    """Rows left `sending` by a stopped process: failed/unknown since now (never resent blindly).

    This process opened the DuckDB file, so the one that marked them `sending` has stopped
    (one writer at a time): no request for them can leave after `now`.
    """
    with store.transaction(con):
        stuck = con.execute(
            "update outbox set status = 'failed', failure = 'unknown', unknown_since = $now, "
            "last_error = 'outcome unknown: the sending process stopped mid-request; looked up "
            "in SendGrid''s Email Activity by message_key before any resend (docs/emails.md)' "
            "where status = 'sending' returning message_key, email_key",
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


def _resolve_unknown(
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
        "where o.status = 'failed' and o.failure = 'unknown' "
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
            values = ("failed", None, error[:_MAX_ERROR], None)
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
            "failure = case when r.s = 'failed' then 'unknown' end, "
            "provider_message_id = coalesce(r.pid, outbox.provider_message_id), "
            "last_error = r.e, sent_at = r.t, "
            "unknown_since = case when r.s = 'failed' then outbox.unknown_since end "
            "from res r where outbox.email_key = r.ek "
            "and outbox.status = 'failed' and outbox.failure = 'unknown'"
        )
        audit.append(
            con, run_id, sorted(events, key=lambda ev: ev.entity_id), logged_at=looked_up_at
        )


_MAX_ERROR = 500


@dataclass(frozen=True)
class _Sendable:
    """An email to send, as queued: who, what it carries (its texts are rendered later)."""

    email_key: str
    to_email: str
    to_name: str | None
    kinds: tuple[str, ...]
    message_keys: tuple[str, ...]


def _load_sendable(con: duckdb.DuckDBPyConnection, retry_budget: int) -> list[_Sendable]:
    """Emails with a pending message, or a transient failure still within the budget."""
    rows = con.execute(
        "with todo as (select email_key, min(created_at) as created_at from outbox "
        "where status = 'pending' or (status = 'failed' and failure = 'transient' "
        "and attempts < $budget) group by email_key) "
        "select e.email_key, e.to_email, e.to_name, e.kinds, e.message_keys "
        "from todo t join outbox_emails e using (email_key) "
        "order by t.created_at, e.email_key",
        {"budget": retry_budget},
    ).fetchall()
    return [_Sendable(k, to, name, tuple(kinds), tuple(mk)) for k, to, name, kinds, mk in rows]


def _rendered_batches(
    con: duckdb.DuckDBPyConnection,
    todo: Sequence[_Sendable],
    batch_size: int,
    opts: SendOptions,
) -> Generator[_Batch, None, None]:
    """The batches to send, rendered RENDER_CHUNK_BATCHES batches at a time, a chunk ahead.

    A thread with its own DuckDB connection (a cursor: its own temp tables) renders each
    chunk in one set-based statement (EmailRenderer.emails) while the requests of the one
    before are in flight; emails whose kind has a dynamic template get it and its data (read
    then, as the bodies are). At most two chunks' texts are in memory, never all of them.
    The chunk ahead is rendered before any of its batches is marked `sending`.
    """
    size = max(1, batch_size)
    chunk = size * RENDER_CHUNK_BATCHES
    # the first chunk is one batch, so that the first request does not wait for a whole chunk
    parts = [todo[:size]] + [todo[i : i + chunk] for i in range(size, len(todo), chunk)]
    if not todo:
        return
    ready: queue.Queue[list[OutgoingEmail] | BaseException] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        cur = con.cursor()
        renderer = EmailRenderer(cur, discount_code=opts.discount_code)
        try:
            for part in parts:
                if stop.is_set():
                    return
                ready.put(_render_chunk(cur, renderer, part, opts))
        except BaseException as exc:  # handed to the sending thread, raised there
            ready.put(exc)
        finally:
            renderer.close()
            cur.close()

    producer = threading.Thread(target=produce, name="render", daemon=True)
    producer.start()
    try:
        for _ in parts:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            for i in range(0, len(item), size):
                batch = item[i : i + size]
                yield _Batch(batch, [e.message_key for e in batch])
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting to hand over a chunk
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        producer.join()


def _render_chunk(
    con: duckdb.DuckDBPyConnection,
    renderer: EmailRenderer,
    part: Sequence[_Sendable],
    opts: SendOptions,
) -> list[OutgoingEmail]:
    """These emails rendered (and given their dynamic template, if their kind has one)."""
    rendered = renderer.emails([t.email_key for t in part])
    missing = [t.email_key for t in part if t.email_key not in rendered]
    if missing:  # every queued email has its messages: a bug; stop before sending any of it
        raise RuntimeError(f"{len(missing)} email(s) could not be rendered, e.g. {missing[0]}")
    emails = [
        OutgoingEmail(
            t.email_key,
            t.to_email,
            t.to_name,
            rendered[t.email_key].subject,
            rendered[t.email_key].text,
            rendered[t.email_key].html,
            categories=t.kinds if len(t.kinds) == 1 else ("combined",),
            carries=t.message_keys,
        )
        for t in part
    ]
    if opts.template_ids:
        emails = _with_templates(con, emails, opts)
    return emails


def _template_for(email: OutgoingEmail, template_ids: Mapping[str, str]) -> str | None:
    """The template configured for this email: its kind's, or the combined one."""
    if len(email.carries) > 1:
        return template_ids.get(COMBINED_TEMPLATE)
    return template_ids.get(email.categories[0]) if email.categories else None


def _with_templates(
    con: duckdb.DuckDBPyConnection, emails: list[OutgoingEmail], opts: SendOptions
) -> list[OutgoingEmail]:
    """Emails whose kind has a template id get it and their data (read at send time)."""
    want = {e.message_key: t for e in emails if (t := _template_for(e, opts.template_ids))}
    if not want:
        return emails
    data = _template_data(con, list(want), {e.message_key: e for e in emails}, opts)
    out = []
    for e in emails:
        d = data.get(e.message_key)
        if d is None:
            out.append(e)
        elif template_data_bytes(d) > MAX_TEMPLATE_DATA_BYTES:
            log.warning(
                "email %s: template data over %d bytes; sent with the rendered bodies",
                e.message_key,
                MAX_TEMPLATE_DATA_BYTES,
            )
            out.append(e)
        else:
            out.append(dataclasses.replace(e, template_id=want[e.message_key], template_data=d))
    return out


def _template_data(
    con: duckdb.DuckDBPyConnection,
    email_keys: list[str],
    emails: Mapping[str, OutgoingEmail],
    opts: SendOptions,
) -> dict[str, dict[str, Any]]:
    """The handlebars data of each email: customer, and per order its state and lines.

    What the message tells (kind, condition, promised date) comes from outbox.state, as
    queued; the lines (sku, product, quantity, status, date, in-stock substitutes) are
    read from line_status now, as the rendered bodies were read at queueing.
    """
    # supply_lots is a mart the reconcile stage builds; without it, no substitutes
    has_lots = con.execute(
        "select count(*) from information_schema.tables where table_name = 'supply_lots'"
    ).fetchone()
    in_stock = (
        "select sku from supply_lots where supply_kind = 'stock' group by sku having sum(qty) > 0"
        if has_lots and has_lots[0]
        else "select null::varchar as sku where false"
    )
    rows = con.execute(
        "with e as (select unnest($keys::varchar[]) as email_key), "
        f"in_stock as ({in_stock}), "
        "subs as (select p.sku, list(u.sub order by u.sub) as skus "
        "from products as p, unnest(p.substitute_skus) as u(sub) "
        "where u.sub in (select sku from in_stock) group by p.sku) "
        "select o.email_key, o.order_id, o.kind, o.state::varchar, c.locale, "
        "l.line_no, l.sku, coalesce(p.name, l.sku), l.qty_ordered - l.qty_shipped, "
        "l.status, l.promised_date, coalesce(s.skus, []) "
        "from outbox o join e using (email_key) "
        "left join customers c on c.customer_id = o.customer_id "
        "left join line_status l on l.order_id = o.order_id "
        "and l.status not in ('shipped', 'cancelled') "
        "left join products p on p.sku = l.sku "
        "left join subs s on s.sku = l.sku "
        "where o.status in ('pending', 'failed') "
        "order by o.email_key, o.order_id, l.line_no",
        {"keys": email_keys},
    ).fetchall()
    orders: dict[str, dict[str, dict[str, Any]]] = {}
    locales: dict[str, str | None] = {}
    for ek, order_id, kind, state_json, locale, line_no, sku, name, qty, status, pd, subs in rows:
        locales[ek] = locale
        per_email = orders.setdefault(ek, {})
        order = per_email.get(order_id)
        if order is None:
            state = OrderState.from_json(state_json)
            order = {
                "order_id": safe_header_value(order_id),
                "kind": kind,
                "condition": state.condition,
                "promised_date": format_date(state.promised_date, locale),
                "promised_date_iso": state.promised_date.isoformat()
                if state.promised_date
                else None,
                "lines": [],
            }
            if kind == "delay_apology":
                order["discount_code"] = opts.discount_code
            if kind == "cancellation_offer":
                order["reason"] = _REASONS.get(state.condition, "")
            per_email[order_id] = order
        if line_no is not None:
            order["lines"].append(
                {
                    "line_no": int(line_no),
                    "sku": sku,
                    "product_name": name,
                    "qty": int(qty),
                    "status": status,
                    "promised_date": format_date(pd, locale),
                    "promised_date_iso": pd.isoformat() if pd else None,
                    "substitutes": list(subs),
                }
            )
    out: dict[str, dict[str, Any]] = {}
    for ek, per_email in orders.items():
        email = emails[ek]
        parts = list(per_email.values())
        data: dict[str, Any] = {
            "subject": safe_header_value(email.subject),
            "customer_name": safe_header_value(email.to_name or "") or "customer",
            "locale": locales[ek] or "en-US",
            "order_ids": ", ".join(p["order_id"] for p in parts),
            "orders": parts,
        }
        if len(parts) == 1:
            data.update(parts[0])  # one order: its fields at the top level too
        out[ek] = data
    return out


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
    batch: _Batch,
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
