"""SendGrid dynamic templates: which template an email uses, and its data at send time."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import duckdb

from backorders.adapters.email_renderer import REASONS
from backorders.domain.email import (
    COMBINED_TEMPLATE,
    MAX_TEMPLATE_DATA_BYTES,
    OutgoingEmail,
    safe_header_value,
    template_data_bytes,
)
from backorders.domain.messages import OrderState, format_date

if TYPE_CHECKING:
    from backorders.adapters.outbox_send import SendOptions

log = logging.getLogger(__name__)


def _template_for(email: OutgoingEmail, template_ids: Mapping[str, str]) -> str | None:
    """The template configured for this email: its kind's, or the combined one."""
    if len(email.carries) > 1:
        return template_ids.get(COMBINED_TEMPLATE)
    return template_ids.get(email.categories[0]) if email.categories else None


def with_templates(
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
                order["reason"] = REASONS.get(state.condition, "")
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
