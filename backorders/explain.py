"""`backorders explain`: why a line got what it got, in words a person can check."""

from __future__ import annotations

import duckdb

from backorders.adapters import store
from backorders.domain.priority import PRIORITY_FIELDS

_LABEL = {
    "order_priority": "order priority (higher first)",
    "customer_tier": "customer tier",
    "placed_at": "order date (older first)",
    "order_value": "order value (larger first)",
}


def explain(
    con: duckdb.DuckDBPyConnection,
    order_id: str,
    line_no: int | None,
    *,
    priority_key: list[str],
    tiers: list[str],
    show: int = 5,
) -> list[str]:
    """Lines of text explaining each requested line of an order (empty if none)."""
    cur = store.run(con, "explain/line", {"order_id": order_id, "line_no": line_no})
    cols = [d[0] for d in cur.description or []]
    lines = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    out: list[str] = []
    key_text = " > ".join(_LABEL[k] for k in priority_key if k in PRIORITY_FIELDS)
    for ln in lines:
        out.append(
            f"{ln['order_id']} line {ln['line_no']}  {ln['sku']}  status {ln['status']}"
            + (f", promised {ln['promised_date']}" if ln["promised_date"] else "")
        )
        out.append(
            f"  ordered {ln['qty_ordered']}, shipped {ln['qty_shipped']}: from stock "
            f"{ln['qty_allocated']}, promised from POs {ln['qty_promised']}, "
            f"without supply {ln['qty_unpromised']}"
        )
        if ln["priority_rank"] is None:
            out.append(f"  closed: {ln['reason']}")
            continue
        tier_pos = tiers.index(ln["tier"]) + 1 if ln["tier"] in tiers else len(tiers) + 1
        lines_for_sku = store.scalar(con, store.sql("explain/lines_for_sku"), {"sku": ln["sku"]})
        out.append(
            f"  rank {ln['priority_rank']} of {lines_for_sku} open lines for {ln['sku']}, "
            f"served by {key_text}, then order id and line number"
        )
        out.append(
            f"  this line: order priority {ln['order_priority']}, tier {ln['tier']} "
            f"({tier_pos} of {len(tiers)}), placed {ln['placed_at']:%Y-%m-%d %H:%M} UTC, "
            f"order value {ln['order_value']}"
        )
        ahead = store.run(
            con,
            "explain/ahead",
            {"sku": ln["sku"], "rank": ln["priority_rank"], "show": show},
        ).fetchall()
        if ahead:
            n, units, stock, po = ahead[0][:4]
            out.append(
                f"  ahead of it: {n} line(s) wanting {units} unit(s); they took {stock} from "
                f"stock and {po} from POs. Nearest ahead:"
            )
            for *_, oid, no, rank, qty, prio, tier, placed, got_s, got_p in ahead:
                out.append(
                    f"    rank {rank}: {oid} line {no}, priority {prio}, {tier}, placed "
                    f"{placed:%Y-%m-%d}, wants {qty}, got {got_s} from stock + {got_p} from POs"
                )
        else:
            out.append("  nothing is ahead of it: it is served first for this sku")
        if not ln["backorderable"] or ln["product_status"] != "active":
            out.append(
                f"  product is {ln['product_status']}"
                + ("" if ln["backorderable"] else ", not backorderable")
                + ": it can take stock, never a promise from a PO"
            )
        out.append(f"  supply of {ln['sku']}, in drawing order:")
        supply = store.run(
            con,
            "explain/supply",
            {"order_id": ln["order_id"], "line_no": ln["line_no"], "sku": ln["sku"]},
        ).fetchall()
        if not supply:
            out.append("    none: no stock and no open purchase order")
        for kind, ref, on, before, qty, usable, note, taken in supply:
            what = f"on hand {before}" if kind == "stock" else f"ETA {on}, qty {before}"
            held = f", usable {qty}" if kind == "stock" and qty != before else ""
            why = f" [{note}]" if note else ("" if usable else " [not usable]")
            out.append(f"    {kind} {ref}: {what}{held}{why} -> this line took {taken}")
        if ln["safety_stock"]:
            out.append(
                f"  safety stock of {ln['safety_stock']} unit(s) is held back for {ln['sku']}"
            )
        out.append(f"  rule: {ln['reason']}")
    return out
