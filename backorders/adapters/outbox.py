"""The notifications outbox: queue one message per order event (at most once), then send.

This module is the outbox's public face; the work lives in outbox_queue (queueing),
email_renderer (rendering), template_data (dynamic templates), outbox_batches (what a
pass sends, rendered a chunk ahead), outbox_send (the send loop), outbox_records (what
each request writes to the outbox) and outbox_doubt (in-doubt resolution).

A message's key is deterministic (domain.messages.message_key), so a rerun, a
retry or a crash can only find the row already there, never add a second one.
Queueing is derived from line_status against what the outbox already told, so it
is crash-safe: a run that dies after allocating and before queueing leaves the
same candidates for the next run (docs/emails.md).

One customer's new messages of one run travel in one email (outbox_emails); the
messages of an email always share their status. Queueing writes what was decided, not
text: EmailRenderer renders the emails from it when they are sent and on demand.
Sending moves an email's rows pending -> sending (committed just before its request goes
out) -> sent | failed, one request per rendered email (templated ones together) and a
few requests at a time. A row found in `sending` at the start of a send belongs to a
process that stopped mid-request: SendGrid may or may not have it, and SendGrid has no
idempotency key, so it is not resent blindly: it stays `sending`, flagged in doubt
(failure = 'unknown'), and is looked up in SendGrid's Email Activity by its key (found:
sent; not found once the feed has had time to catch up: pending again; lookup
unavailable: left for a person). A 'transient' failure (SendGrid surely did not accept
it) is retried by later passes until its attempts reach the retry budget.
"""

from __future__ import annotations

from backorders.adapters.email_renderer import REASONS as _REASONS
from backorders.adapters.email_renderer import (
    TEMPLATE_DIR,
    EmailRenderer,
    load_layout,
    load_templates,
    render_emails,
    render_messages,
)
from backorders.adapters.outbox_batches import RENDER_CHUNK_BATCHES
from backorders.adapters.outbox_doubt import ActivitySender
from backorders.adapters.outbox_queue import (
    MAX_MESSAGES_PER_EMAIL,
    QUEUED_EVENT,
    QueueResult,
    queue_messages,
)
from backorders.adapters.outbox_send import (
    Sender,
    SendOptions,
    SendResult,
    send_pending,
)

__all__ = [
    "MAX_MESSAGES_PER_EMAIL",
    "QUEUED_EVENT",
    "RENDER_CHUNK_BATCHES",
    "TEMPLATE_DIR",
    "_REASONS",
    "ActivitySender",
    "EmailRenderer",
    "QueueResult",
    "SendOptions",
    "SendResult",
    "Sender",
    "load_layout",
    "load_templates",
    "queue_messages",
    "render_emails",
    "render_messages",
    "send_pending",
]
