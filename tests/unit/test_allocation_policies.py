"""The allocation policies of issue 3, on the reference allocator (pure, fast)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backorders.domain.allocation import LineOutcome, Product, SupplyLot, allocate
from backorders.domain.priority import DemandLine

pytestmark = pytest.mark.unit
TODAY = date(2026, 11, 23)
KEY = ["order_priority", "customer_tier", "placed_at", "order_value"]
TIERS = ["platinum", "gold", "silver", "standard"]


def line(
    order: str, no: int, sku: str, qty: int, *, day: int, tier: str = "standard", **kw: bool
) -> DemandLine:
    return DemandLine(
        order, no, sku, qty, 0, tier, datetime(2026, 11, day, tzinfo=UTC), Decimal(10), **kw
    )


def stock(sku: str, qty: int, loc: str = "WH-1") -> SupplyLot:
    return SupplyLot(sku, "stock", loc, qty, TODAY)


def po(sku: str, qty: int, eta: date, ref: str = "PO-1:1") -> SupplyLot:
    return SupplyLot(sku, "po", ref, qty, eta)


def run(
    lines: list[DemandLine], lots: list[SupplyLot], **kw: object
) -> dict[tuple[str, int], LineOutcome]:
    products = kw.pop("products", {})
    _, out = allocate(lines, lots, key=KEY, tiers=TIERS, handling_days=1, products=products, **kw)  # type: ignore[arg-type]
    return {(o.order_id, o.line_no): o for o in out}


def test_ship_complete_order_not_fully_covered_is_held_and_its_stock_goes_to_the_next_line() -> (
    None
):
    lines = [
        line("A", 1, "S1", 2, day=1, ship_complete=True),
        line("A", 2, "S2", 5, day=1, ship_complete=True),  # S2 has no stock: A cannot ship
        line("B", 1, "S1", 2, day=2),
    ]
    out = run(lines, [stock("S1", 2)])
    assert out[("A", 1)].qty_allocated == 0 and out[("A", 1)].held
    assert out[("B", 1)].qty_allocated == 2 and out[("B", 1)].status == "allocated"


def test_ship_complete_order_fully_covered_is_released() -> None:
    lines = [
        line("A", 1, "S1", 2, day=1, ship_complete=True),
        line("A", 2, "S2", 1, day=1, ship_complete=True),
    ]
    out = run(lines, [stock("S1", 2), stock("S2", 1)])
    assert {o.status for o in out.values()} == {"allocated"}
    assert not any(o.held for o in out.values())


def test_ship_complete_lines_share_the_date_of_the_last_line() -> None:
    lines = [
        line("A", 1, "S1", 1, day=1, ship_complete=True),
        line("A", 2, "S2", 1, day=1, ship_complete=True),
    ]
    out = run(lines, [po("S1", 1, date(2026, 12, 1)), po("S2", 1, date(2026, 12, 20), "PO-2:1")])
    assert out[("A", 1)].promised_date == out[("A", 2)].promised_date == date(2026, 12, 21)


def test_ship_complete_order_with_an_uncovered_line_has_no_date_on_any_line() -> None:
    lines = [
        line("A", 1, "S1", 1, day=1, ship_complete=True),
        line("A", 2, "S2", 3, day=1, ship_complete=True),
    ]
    out = run(lines, [po("S1", 1, date(2026, 12, 1)), po("S2", 1, date(2026, 12, 2), "PO-2:1")])
    assert out[("A", 1)].promised_date is None and out[("A", 2)].promised_date is None


def test_backorder_beyond_max_backorder_qty_is_refused_in_rank_order() -> None:
    lines = [
        line("A", 1, "S1", 3, day=1),
        line("B", 1, "S1", 3, day=2),
        line("C", 1, "S1", 3, day=3),
    ]
    out = run(
        lines,
        [stock("S1", 1), po("S1", 50, date(2026, 12, 1))],
        products={"S1": Product(max_backorder_qty=4)},
    )
    # stock covers 1 of A; the backorder room of 4 goes to A (2) then B (2); C gets none
    assert (out[("A", 1)].qty_refused, out[("B", 1)].qty_refused, out[("C", 1)].qty_refused) == (
        0,
        1,
        3,
    )
    assert out[("A", 1)].status == "promised"
    assert out[("B", 1)].status == out[("C", 1)].status == "not_backorderable"
    assert out[("B", 1)].qty_promised == 2 and out[("C", 1)].qty_promised == 0


def test_not_backorderable_product_gets_stock_but_never_a_promise() -> None:
    lines = [line("A", 1, "S1", 3, day=1)]
    out = run(
        lines,
        [stock("S1", 1), po("S1", 10, date(2026, 12, 1))],
        products={"S1": Product(backorderable=False)},
    )
    o = out[("A", 1)]
    assert (o.qty_allocated, o.qty_promised, o.qty_refused, o.status) == (
        1,
        0,
        2,
        "not_backorderable",
    )


def test_committed_line_keeps_its_stock_against_a_higher_priority_newcomer() -> None:
    lines = [
        line("OLD", 1, "S1", 2, day=5, committed=True),
        line("VIP", 1, "S1", 2, day=6, tier="platinum"),
    ]
    out = run(lines, [stock("S1", 2)])
    assert out[("OLD", 1)].qty_allocated == 2 and out[("VIP", 1)].qty_allocated == 0
    assert out[("VIP", 1)].priority_rank == 1  # the rank still says who is first


def test_without_keep_committed_priority_takes_the_stock_back() -> None:
    lines = [
        line("OLD", 1, "S1", 2, day=5, committed=True),
        line("VIP", 1, "S1", 2, day=6, tier="platinum"),
    ]
    out = run(lines, [stock("S1", 2)], keep_committed=False)
    assert out[("VIP", 1)].qty_allocated == 2 and out[("OLD", 1)].qty_allocated == 0


def test_allocated_units_per_sku_equal_min_of_demand_and_supply() -> None:
    lines = [line(f"O{i}", 1, "S1", 1 + i % 3, day=1 + i % 20) for i in range(30)]
    lots = [
        stock("S1", 7),
        po("S1", 9, date(2026, 12, 1)),
        po("S1", 4, date(2026, 12, 9), "PO-2:1"),
    ]
    out = run(lines, lots)
    demand = sum(ln.qty for ln in lines)
    assert sum(o.qty_allocated + o.qty_promised for o in out.values()) == min(demand, 20)
