"""The allocation policy, as a small readable reference allocator (the oracle for the SQL).

For each sku, open lines are served in priority order (domain.priority) from the
sku's supply in a fixed order: stock first (by location), then open purchase
orders by ETA. Partial fills: a line takes what is left. Shortage is an outcome,
not an error: every line comes back with what it got and what it did not.
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


@dataclass(frozen=True)
class SupplyLot:
    """Units of one sku available on a date: a stock location or an open PO line."""

    sku: str
    kind: SupplyKind
    ref: str  # location_id for stock; "po_id:line_no" for a PO
    qty: int
    available_on: date
    order: int = 0  # position within the sku's supply (stock by location, then POs by ETA)


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
    promised_date: date | None
    status: LineStatus
    priority_rank: int


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


def line_status(qty_open: int, allocated: int, promised: int, *, backorderable: bool) -> LineStatus:
    """The status of an open line from what it got."""
    if allocated >= qty_open:
        return "allocated"
    if not backorderable:
        return "not_backorderable"
    if allocated + promised >= qty_open:
        return "promised"
    return "partially_allocated" if allocated > 0 else "unpromised"


def allocate(
    lines: Sequence[DemandLine],
    lots: Sequence[SupplyLot],
    *,
    key: Sequence[str],
    tiers: Sequence[str],
    handling_days: int,
    backorderable: Mapping[str, bool],
) -> tuple[list[Allocation], list[LineOutcome]]:
    """Allocate lots to lines sku by sku in priority order; non-backorderable skus get stock only."""
    by_sku: dict[str, list[SupplyLot]] = defaultdict(list)
    for lot in supply_order(lots):
        if lot.qty > 0 and (lot.kind == "stock" or backorderable.get(lot.sku, True)):
            by_sku[lot.sku].append(lot)
    remaining = {id(lot): lot.qty for lots_ in by_sku.values() for lot in lots_}
    allocations: list[Allocation] = []
    outcomes: list[LineOutcome] = []
    ranked = sorted(lines, key=lambda ln: (ln.sku, *sort_key(ln, key, tiers)))
    rank: dict[str, int] = defaultdict(int)
    for line in ranked:
        rank[line.sku] += 1
        need, got = line.qty, {"stock": 0, "po": 0}
        last_date: date | None = None
        for lot in by_sku.get(line.sku, []):
            if need == 0:
                break
            take = min(need, remaining[id(lot)])
            if take == 0:
                continue
            remaining[id(lot)] -= take
            need -= take
            got[lot.kind] += take
            last_date = lot.available_on if last_date is None else max(last_date, lot.available_on)
            allocations.append(
                Allocation(
                    line.order_id, line.line_no, line.sku, lot.kind, lot.ref, take, lot.available_on
                )
            )
        ok = backorderable.get(line.sku, True)
        status = line_status(line.qty, got["stock"], got["po"], backorderable=ok)
        covered = need == 0
        promised_date = (
            last_date + timedelta(days=handling_days) if covered and last_date is not None else None
        )
        outcomes.append(
            LineOutcome(
                line.order_id,
                line.line_no,
                line.sku,
                line.qty,
                got["stock"],
                got["po"],
                need,
                promised_date,
                status,
                rank[line.sku],
            )
        )
    return allocations, outcomes
