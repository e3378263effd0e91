"""What a send pass sends: the sendable emails, rendered a chunk ahead, one request each."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from backorders.adapters.email_renderer import EmailRenderer
from backorders.adapters.template_data import with_templates
from backorders.domain.email import OutgoingEmail

if TYPE_CHECKING:
    from backorders.adapters.outbox_send import SendOptions

RENDER_CHUNK_BATCHES = 10  # the sender renders this many batches' emails at a time


@dataclass
class Batch:
    """One request's emails, their keys and the rowids of their outbox and outbox_emails rows.

    The rowids make each request's updates point lookups: outbox keeps no key index
    (migration 004), and a scan per request would cost ~100 ms at 2M rows; the updates
    still check the keys, so a moved row is never touched by mistake.
    """

    emails: list[OutgoingEmail]
    keys: list[str] = field(default_factory=list)  # email keys
    row_ids: list[int] = field(default_factory=list)  # outbox rowids
    email_row_ids: list[int] = field(default_factory=list)  # outbox_emails rowids


@dataclass(frozen=True)
class Sendable:
    """An email to send, as queued: who, what it carries (its texts are rendered later)."""

    email_key: str
    to_email: str
    to_name: str | None
    kinds: tuple[str, ...]
    message_keys: tuple[str, ...]
    row_ids: tuple[int, ...] = ()  # its outbox rows
    email_row_id: int = -1  # its outbox_emails row


def load_sendable(con: duckdb.DuckDBPyConnection, retry_budget: int) -> list[Sendable]:
    """Emails with a pending message, or a transient failure still within the budget."""
    rows = con.execute(
        "with todo as (select email_key, min(created_at) as created_at, "
        "list(rowid) as rids from outbox "
        "where status = 'pending' or (status = 'failed' and failure = 'transient' "
        "and attempts < $budget) group by email_key) "
        "select e.email_key, e.to_email, e.to_name, e.kinds, e.message_keys, t.rids, e.rowid "
        "from todo t join outbox_emails e using (email_key) "
        "order by t.created_at, e.email_key",
        {"budget": retry_budget},
    ).fetchall()
    return [
        Sendable(k, to, name, tuple(kinds), tuple(mk), tuple(rids), erid)
        for k, to, name, kinds, mk, rids, erid in rows
    ]


def requests_of(
    emails: Sequence[OutgoingEmail],
    batch_size: int,
    queued: Mapping[str, Sendable] | None = None,
) -> list[Batch]:
    """The requests these emails go in: one per rendered email, templated ones together.

    A rendered email has its own subject and bodies, so it travels alone; emails of one
    dynamic template and the same categories share a request of up to `batch_size`
    personalizations (docs/emails.md, "One request per email"). `queued` gives the
    emails' rowids.
    """
    out: list[Batch] = []
    groups: dict[tuple[str, tuple[str, ...]], list[OutgoingEmail]] = {}

    def batch(group: list[OutgoingEmail]) -> Batch:
        b = Batch(list(group), [e.message_key for e in group])
        for e in group:
            t = queued.get(e.message_key) if queued else None
            if t is not None:
                b.row_ids.extend(t.row_ids)
                b.email_row_ids.append(t.email_row_id)
        return b

    for e in emails:
        if e.template_id is None:
            out.append(batch([e]))
        else:
            group = groups.setdefault((e.template_id, e.categories), [])
            group.append(e)
            if len(group) == batch_size:
                out.append(batch(group))
                group.clear()
    out.extend(batch(g) for g in groups.values() if g)
    return out


def rendered_batches(
    con: duckdb.DuckDBPyConnection,
    todo: Sequence[Sendable],
    batch_size: int,
    opts: SendOptions,
) -> Generator[Batch, None, None]:
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
    queued = {t.email_key: t for t in todo}
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
            yield from requests_of(item, size, queued)
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting to hand over a chunk
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        producer.join()


def _render_chunk(
    con: duckdb.DuckDBPyConnection,
    renderer: EmailRenderer,
    part: Sequence[Sendable],
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
        emails = with_templates(con, emails, opts)
    return emails
