"""The notifications outbox: queue one message per order event (at most once), then send.

A message's key is deterministic (domain.messages.message_key), so a rerun, a
retry or a crash can only find the row already there, never add a second one.
Sending moves a row pending -> sending (committed before the request goes out)
-> sent | failed. A row found in `sending` at the start of a send belongs to a
process that stopped mid-request: SendGrid may or may not have it, and SendGrid
has no idempotency key, so it is not resent blindly; it is marked failed with
that explanation for a person to check (docs/emails.md).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from backorders.adapters import audit, store
from backorders.domain.email import OutgoingEmail, SendOutcome, is_deliverable_address
from backorders.domain.messages import (
    LineView,
    MessageKind,
    OrderState,
    Templates,
    choose_message,
    message_key,
    order_state,
    render,
)
from backorders.settings import PROJECT_ROOT

log = logging.getLogger(__name__)
TEMPLATE_DIR = PROJECT_ROOT / "config" / "templates"


class Sender(Protocol):
    """Anything that sends one email and says what happened (SendGridSender, or a fake)."""

    def send(self, email: OutgoingEmail) -> SendOutcome:
        """Send one email."""
        ...


def load_templates(folder: Path = TEMPLATE_DIR) -> dict[str, Templates]:
    """Read config/templates/<kind>.toml for every kind."""
    out = {}
    for p in sorted(folder.glob("*.toml")):
        with p.open("rb") as fh:
            d = tomllib.load(fh)
        out[p.stem] = Templates(d["subject"], d["text"].strip() + "\n", d["html"].strip() + "\n")
    return out


@dataclass
class QueueResult:
    """How many messages this run queued, by kind, and how many were suppressed."""

    queued: int
    suppressed: int
    by_kind: dict[str, int]


def queue_messages(
    con: duckdb.DuckDBPyConnection, *, run_id: str, now: datetime, dry_run: bool
) -> QueueResult:
    """Queue the messages that this run's changes deserve (idempotent by message key)."""
    templates = load_templates()
    rows = store.run(con, "outbox/order_candidates").fetchall()
    cols = [d[0] for d in con.description or []]
    orders: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        rec = dict(zip(cols, r, strict=True))
        orders.setdefault(rec["order_id"], []).append(rec)
    out: dict[str, list[Any]] = {k: [] for k in _OUTBOX_COLS}
    for order_id, recs in orders.items():
        first = recs[0]
        lines = [
            LineView(
                r["line_no"],
                r["sku"],
                r["product_name"],
                int(r["qty"]),
                r["status"],
                r["promised_date"],
                tuple(r["substitutes"] or ()),
            )
            for r in recs
        ]
        state = order_state(lines)
        prev = OrderState.from_json(first["previous_state"]) if first["previous_state"] else None
        kind: MessageKind | None = choose_message(prev, state)
        if kind is None:
            continue
        msg = render(
            templates[kind],
            customer_name=first["customer_name"],
            order_id=order_id,
            state=state,
            lines=lines,
            locale=first["locale"],
        )
        status, reason = "pending", None
        if not first["email_opt_in"]:
            status, reason = "suppressed", "customer opted out of email (email_opt_in=false)"
        elif not is_deliverable_address(first["email"]):
            status, reason = "suppressed", "not a deliverable email address"
        elif dry_run:
            status, reason = "suppressed", "dry run: rendered and recorded, not sent"
        key = message_key(first["customer_id"], order_id, kind, state)
        for col, val in (
            ("message_key", key),
            ("customer_id", first["customer_id"]),
            ("order_id", order_id),
            ("kind", kind),
            ("status", status),
            ("last_error", reason),
            ("to_email", first["email"]),
            ("subject", msg.subject),
            ("body_text", msg.text),
            ("body_html", msg.html),
            ("state", state.to_json()),
        ):
            out[col].append(val)
    batch = pa.table(out, schema=_OUTBOX_SCHEMA)  # noqa: F841  (scanned by DuckDB below)
    with store.transaction(con):
        con.execute(
            "create or replace temp table _new_msgs as select b.* from batch b "
            "anti join outbox o using (message_key)"
        )
        con.execute(
            "insert into outbox (message_key, customer_id, order_id, kind, status, attempts, "
            "last_error, created_at, run_id, to_email, subject, body_text, body_html, state) "
            "select message_key, customer_id, order_id, kind, status, 0, last_error, $now, $run, "
            "to_email, subject, body_text, body_html, state::json from _new_msgs",
            {"now": now, "run": run_id},
        )
        new = con.execute(
            "select message_key, order_id, kind, status, last_error from _new_msgs order by 1"
        ).fetchall()
        audit.append(
            con,
            run_id,
            [
                audit.AuditEvent(
                    "message_" + ("queued" if st == "pending" else "suppressed"),
                    "message",
                    key,
                    {"order_id": oid, "kind": kind_, "reason": err},
                )
                for key, oid, kind_, st, err in new
            ],
            logged_at=now,
        )
    by_kind: dict[str, int] = {}
    for _, _, kind_, _, _ in new:
        by_kind[kind_] = by_kind.get(kind_, 0) + 1
    suppressed = sum(1 for *_, st, _ in new if st == "suppressed")
    return QueueResult(queued=len(new) - suppressed, suppressed=suppressed, by_kind=by_kind)


_OUTBOX_COLS = (
    "message_key",
    "customer_id",
    "order_id",
    "kind",
    "status",
    "last_error",
    "to_email",
    "subject",
    "body_text",
    "body_html",
    "state",
)
_OUTBOX_SCHEMA = pa.schema([(c, pa.string()) for c in _OUTBOX_COLS])


@dataclass
class SendResult:
    """What one send pass did."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0


def send_pending(
    con: duckdb.DuckDBPyConnection,
    sender: Sender,
    *,
    run_id: str,
    now: Callable[[], datetime],
    progress: Callable[[str], None] = log.info,
) -> SendResult:
    """Send every pending message once; record each outcome and audit it."""
    result = SendResult()
    with store.transaction(con):
        stuck = con.execute(
            "update outbox set status = 'failed', last_error = 'outcome unknown: the sending "
            "process stopped mid-request; not resent automatically (SendGrid has no idempotency "
            "key): check SendGrid activity for this message_key, then requeue if needed' "
            "where status = 'sending' returning message_key"
        ).fetchall()
        audit.append(
            con,
            run_id,
            [audit.AuditEvent("message_outcome_unknown", "message", k, {}) for (k,) in stuck],
            logged_at=now(),
        )
    pending = con.execute(
        "select message_key, to_email, c.name, subject, body_text, body_html, kind "
        "from outbox o join customers c using (customer_id) "
        "where o.status = 'pending' order by o.created_at, o.message_key"
    ).fetchall()
    for i, (key, to_email, name, subject, text, html_, kind) in enumerate(pending, 1):
        with store.transaction(con):
            con.execute(
                "update outbox set status = 'sending', attempts = attempts + 1 "
                "where message_key = $k",
                {"k": key},
            )
        outcome = sender.send(
            OutgoingEmail(key, to_email, name, subject, text, html_, categories=(kind,))
        )
        status = {"sent": "sent", "failed": "failed", "unknown": "failed"}[outcome.status]
        error = outcome.error
        if outcome.status == "unknown":
            result.unknown += 1
            error = f"outcome unknown, not resent automatically: {outcome.error}"
        elif outcome.status == "sent":
            result.sent += 1
        else:
            result.failed += 1
        with store.transaction(con):
            con.execute(
                "update outbox set status = $s, provider_message_id = $pid, last_error = $e, "
                "attempts = attempts - 1 + $a, sent_at = case when $s = 'sent' then $t end "
                "where message_key = $k",
                {
                    "s": status,
                    "pid": outcome.provider_message_id,
                    "e": error,
                    "a": outcome.attempts,
                    "t": now(),
                    "k": key,
                },
            )
            audit.append(
                con,
                run_id,
                [
                    audit.AuditEvent(
                        f"message_{status}",
                        "message",
                        key,
                        {
                            "provider_message_id": outcome.provider_message_id,
                            "attempts": outcome.attempts,
                            "error": error,
                        },
                    )
                ],
                logged_at=now(),
            )
        if i % 100 == 0 or i == len(pending):
            progress(f"sent {i}/{len(pending)} messages")
    return result
