"""The allocation policy, as a small readable reference allocator (the oracle for the SQL).

Per sku, supply is drawn in a fixed order (stock by location, then open purchase
orders by ETA) by open lines in priority order (domain.priority), in three steps:

1. Stock. Lines that held stock in the last run (committed, released for picking)
   are served first, then the rest in rank order; partial fills take what is left.
   A ship-complete order that this does not cover completely is held: its lines
   give their stock back and the next lines take it (one re-pour; a held order
   waits for the next run even if the re-pour would now cover it).
2. Backorder acceptance. What stock did not cover is a backorder, accepted in the
   same order of service (committed lines first, then rank) up to the product's
   max_backorder_qty; the excess, and everything of a product that cannot be
   backordered, is refused (a cancellation offer).
3. Incoming supply. Accepted backorders take open PO lines in that same order.

One order of service for all three steps is what lets the SQL do the whole
allocation from a single sort (running sums in closed form, docs/allocation.md).

A line's promised date is the date of the supply that completes it plus handling
days; a ship-complete order's lines share the date of its last line, and none has
a date until all are covered. Shortage is an outcome, not an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from backorders.domain.priority import DemandLine, sort_key

SupplyKind = Literal["stock", "po"]
LineStatus = Literal[
    "allocated",
    "partially_allocated",
    "promised",
    "unpromised",
    "not_backorderable",
    "shipped",
    "cancelled",
]
LineKey = tuple[str, int]


@dataclass(frozen=True)
class SupplyLot:
    """Units of one sku available on a date: a stock location or an open PO line."""

    sku: str
    kind: SupplyKind
    ref: str  # location_id for stock; "po_id:line_no" for a PO
    qty: int
    available_on: date


@dataclass(frozen=True)
class Allocation:
    """Units of one lot given to one line."""

    order_id: str
    line_no: int
    sku: str
    kind: SupplyKind
    ref: str
    qty: int
    available_on: date


@dataclass(frozen=True)
class LineOutcome:
    """What one open line got: from stock now, from incoming supply, and what is missing."""

    order_id: str
    line_no: int
    sku: str
    qty_open: int
    qty_allocated: int
    qty_promised: int
    qty_unpromised: int
    qty_refused: int  # not accepted as a backorder (not backorderable, or over the limit)
    promised_date: date | None
    status: LineStatus
    priority_rank: int
    held: bool  # ship-complete order waiting for all its lines


@dataclass(frozen=True)
class Product:
    """What allocation needs to know of a product."""

    backorderable: bool = True
    max_backorder_qty: int | None = None  # None: no limit


def supply_order(lots: Iterable[SupplyLot]) -> list[SupplyLot]:
    """Lots in the order they are drawn: stock by location, then POs by ETA and reference."""
    return sorted(lots, key=lambda s: (s.sku, s.kind != "stock", s.available_on, s.ref))


def usable_stock(on_hand_by_location: Mapping[str, int], safety_stock: int) -> dict[str, int]:
    """Stock usable per location once the sku's safety stock is held back (from the last locations)."""
    total = sum(max(0, q) for q in on_hand_by_location.values())
    left = max(0, total - max(0, safety_stock))
    usable = {}
    for loc in sorted(on_hand_by_location):
        take = min(max(0, on_hand_by_location[loc]), left)
        usable[loc] = take
        left -= take
    return usable


def line_status(qty_open: int, allocated: int, promised: int, refused: int) -> LineStatus:
    """The status of an open line from what it got."""
    if allocated >= qty_open:
        return "allocated"
    if refused > 0:
        return "not_backorderable"
    if allocated + promised >= qty_open:
        return "promised"
    return "partially_allocated" if allocated > 0 else "unpromised"


def _pour(needs: Sequence[tuple[DemandLine, int]], lots: Sequence[SupplyLot]) -> list[Allocation]:
    """Give lots (in order) to needs (in order): each need takes what is left."""
    remaining = [lot.qty for lot in lots]
    out: list[Allocation] = []
    i = 0
    for line, need in needs:
        while need > 0 and i < len(lots):
            take = min(need, remaining[i])
            if take > 0:
                lot = lots[i]
                out.append(
                    Allocation(
                        line.order_id,
                        line.line_no,
                        line.sku,
                        lot.kind,
                        lot.ref,
                        take,
                        lot.available_on,
                    )
                )
                remaining[i] -= take
                need -= take
            if remaining[i] == 0:
                i += 1
    return out


def _sum_by_line(allocs: Iterable[Allocation]) -> dict[LineKey, int]:
    got: dict[LineKey, int] = defaultdict(int)
    for a in allocs:
        got[(a.order_id, a.line_no)] += a.qty
    return got


def allocate(
    lines: Sequence[DemandLine],
    lots: Sequence[SupplyLot],
    *,
    key: Sequence[str],
    tiers: Sequence[str],
    handling_days: int,
    products: Mapping[str, Product],
    keep_committed: bool = True,
) -> tuple[list[Allocation], list[LineOutcome]]:
    """Allocate lots to lines per sku: stock, backorder acceptance, incoming supply."""
    lots_by_sku: dict[str, list[SupplyLot]] = defaultdict(list)
    for lot in supply_order(lots):
        if lot.qty > 0:
            lots_by_sku[lot.sku].append(lot)
    by_sku: dict[str, list[DemandLine]] = defaultdict(list)
    for ln in sorted(lines, key=lambda ln: (ln.sku, *sort_key(ln, key, tiers))):
        by_sku[ln.sku].append(ln)
    rank = {(ln.order_id, ln.line_no): r for ls in by_sku.values() for r, ln in enumerate(ls, 1)}
    # the order of service: lines that held stock last run (committed) first, then rank
    serving = {
        sku: sorted(
            ls,
            key=lambda ln: (not (keep_committed and ln.committed), rank[(ln.order_id, ln.line_no)]),
        )
        for sku, ls in by_sku.items()
    }

    def stock_pass(exclude: set[str]) -> list[Allocation]:
        out: list[Allocation] = []
        for sku, order in serving.items():
            stock = [lot for lot in lots_by_sku.get(sku, []) if lot.kind == "stock"]
            out += _pour([(ln, ln.qty) for ln in order if ln.order_id not in exclude], stock)
        return out

    first = _sum_by_line(stock_pass(set()))
    held = {
        ln.order_id
        for ln in lines
        if ln.ship_complete and first.get((ln.order_id, ln.line_no), 0) < ln.qty
    }
    stock_allocs = stock_pass(held) if held else stock_pass(set())
    from_stock = _sum_by_line(stock_allocs)

    accepted: dict[LineKey, int] = {}
    refused: dict[LineKey, int] = {}
    for sku, order in serving.items():
        product = products.get(sku, Product())
        room = product.max_backorder_qty
        for ln in order:
            k = (ln.order_id, ln.line_no)
            need = ln.qty - from_stock.get(k, 0)
            ok = need if product.backorderable else 0
            if room is not None:
                ok = min(ok, room)
                room -= ok
            accepted[k], refused[k] = ok, need - ok

    po_allocs: list[Allocation] = []
    for sku, order in serving.items():
        po_lots = [lot for lot in lots_by_sku.get(sku, []) if lot.kind == "po"]
        po_allocs += _pour([(ln, accepted[(ln.order_id, ln.line_no)]) for ln in order], po_lots)
    from_po = _sum_by_line(po_allocs)

    allocations = stock_allocs + po_allocs
    last_date: dict[LineKey, date] = {}
    for a in allocations:
        k = (a.order_id, a.line_no)
        last_date[k] = max(last_date.get(k, a.available_on), a.available_on)

    def covered(ln: DemandLine) -> bool:
        k = (ln.order_id, ln.line_no)
        return refused[k] == 0 and from_stock.get(k, 0) + from_po.get(k, 0) >= ln.qty

    order_date: dict[str, date | None] = {}
    for ln in lines:
        if ln.ship_complete:
            k = (ln.order_id, ln.line_no)
            cur = order_date.get(ln.order_id, date.min)
            order_date[ln.order_id] = (
                max(cur, last_date[k]) if covered(ln) and cur is not None else None
            )

    outcomes = []
    for ls in by_sku.values():
        for ln in ls:
            k = (ln.order_id, ln.line_no)
            got_s, got_p = from_stock.get(k, 0), from_po.get(k, 0)
            when: date | None = last_date.get(k) if covered(ln) else None
            if ln.ship_complete:
                when = order_date[ln.order_id]
            outcomes.append(
                LineOutcome(
                    ln.order_id,
                    ln.line_no,
                    ln.sku,
                    ln.qty,
                    got_s,
                    got_p,
                    ln.qty - got_s - got_p,
                    refused[k],
                    when + timedelta(days=handling_days) if when is not None else None,
                    line_status(ln.qty, got_s, got_p, refused[k]),
                    rank[k],
                    ln.order_id in held,
                )
            )
    return allocations, outcomes
