"""The reference allocator (the oracle): partial fills, supply order, promise dates, shortage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from backorders.domain.allocation import (
    Allocation,
    LineOutcome,
    Product,
    SupplyLot,
    allocate,
    line_status,
    supply_order,
    usable_stock,
)
from backorders.domain.priority import DemandLine

pytestmark = pytest.mark.unit

KEY = ["order_priority", "customer_tier", "placed_at", "order_value"]
TIERS = ["platinum", "gold", "silver", "standard"]
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)


def line(
    order_id: str,
    qty: int,
    *,
    sku: str = "SKU-1",
    line_no: int = 1,
    priority: int = 0,
    tier: str = "standard",
    placed_at: datetime = T0,
) -> DemandLine:
    return DemandLine(order_id, line_no, sku, qty, priority, tier, placed_at, Decimal("50.00"))


def stock(ref: str, qty: int, *, sku: str = "SKU-1") -> SupplyLot:
    return SupplyLot(sku, "stock", ref, qty, TODAY)


def po(ref: str, qty: int, eta: date, *, sku: str = "SKU-1") -> SupplyLot:
    return SupplyLot(sku, "po", ref, qty, eta)


def run(
    lines: list[DemandLine],
    lots: list[SupplyLot],
    *,
    handling_days: int = 1,
    backorderable: dict[str, bool] | None = None,
) -> tuple[list[Allocation], dict[str, LineOutcome]]:
    allocs, outcomes = allocate(
        lines,
        lots,
        key=KEY,
        tiers=TIERS,
        handling_days=handling_days,
        products={k: Product(backorderable=v) for k, v in (backorderable or {}).items()},
    )
    return allocs, {o.order_id: o for o in outcomes}


def test_lines_are_served_in_priority_order() -> None:
    lines = [line("A", 2, tier="standard"), line("B", 2, tier="platinum")]

    _, out = run(lines, [stock("L1", 2)])

    assert (out["B"].qty_allocated, out["B"].priority_rank, out["B"].status) == (2, 1, "allocated")
    assert (out["A"].qty_allocated, out["A"].priority_rank, out["A"].status) == (0, 2, "unpromised")


def test_partial_fill_takes_what_is_left() -> None:
    lines = [line("A", 3, placed_at=T0), line("B", 5, placed_at=T0 + timedelta(hours=1))]

    allocs, out = run(lines, [stock("L1", 7)])

    assert out["A"].qty_allocated == 3
    assert (out["B"].qty_allocated, out["B"].qty_unpromised) == (4, 1)
    assert out["B"].status == "partially_allocated"
    assert out["B"].promised_date is None
    assert sum(a.qty for a in allocs) == 7


def test_a_line_can_draw_from_several_lots() -> None:
    allocs, out = run([line("A", 5)], [stock("L1", 2), stock("L2", 2), po("P1:1", 4, TODAY)])

    assert [(a.kind, a.ref, a.qty) for a in allocs] == [
        ("stock", "L1", 2),
        ("stock", "L2", 2),
        ("po", "P1:1", 1),
    ]
    assert (out["A"].qty_allocated, out["A"].qty_promised, out["A"].status) == (4, 1, "promised")


def test_stock_is_drawn_before_purchase_orders() -> None:
    # The PO lot is listed first and arrives "earlier" than anything else could; stock still wins.
    lots = [po("P1:1", 10, TODAY), stock("L1", 3)]

    allocs, out = run([line("A", 3), line("B", 3, placed_at=T0 + timedelta(days=1))], lots)

    assert [(a.order_id, a.kind, a.qty) for a in allocs] == [("A", "stock", 3), ("B", "po", 3)]
    assert out["A"].status == "allocated"
    assert out["B"].status == "promised"


def test_purchase_orders_are_drawn_by_eta_then_reference() -> None:
    lots = [
        po("P9:1", 1, TODAY + timedelta(days=9)),
        po("P2:1", 1, TODAY + timedelta(days=3)),
        po("P1:1", 1, TODAY + timedelta(days=3)),
        stock("L2", 1),
        stock("L1", 1),
    ]

    assert [lot.ref for lot in supply_order(lots)] == ["L1", "L2", "P1:1", "P2:1", "P9:1"]


def test_promised_date_is_the_date_of_the_lot_that_completes_the_line_plus_handling_days() -> None:
    early, late = TODAY + timedelta(days=4), TODAY + timedelta(days=10)
    lots = [stock("L1", 1), po("P1:1", 1, early), po("P2:1", 5, late)]

    _, out = run([line("A", 3)], lots, handling_days=2)

    assert out["A"].status == "promised"
    assert out["A"].promised_date == late + timedelta(days=2)


def test_line_fully_allocated_from_stock_is_promised_today_plus_handling_days() -> None:
    _, out = run([line("A", 2)], [stock("L1", 2)], handling_days=3)

    assert out["A"].promised_date == TODAY + timedelta(days=3)


def test_line_not_fully_covered_has_no_promised_date() -> None:
    lots = [stock("L1", 1), po("P1:1", 1, TODAY + timedelta(days=5))]

    _, out = run([line("A", 3)], lots)

    assert (out["A"].qty_allocated, out["A"].qty_promised, out["A"].qty_unpromised) == (1, 1, 1)
    assert out["A"].promised_date is None
    assert out["A"].status == "partially_allocated"


def test_line_with_only_incoming_supply_short_is_unpromised() -> None:
    _, out = run([line("A", 3)], [po("P1:1", 2, TODAY + timedelta(days=5))])

    assert (out["A"].qty_allocated, out["A"].qty_promised, out["A"].status) == (0, 2, "unpromised")
    assert out["A"].promised_date is None


def test_non_backorderable_sku_gets_stock_but_no_po_supply() -> None:
    lines = [line("A", 2, sku="OLD"), line("B", 2, sku="OLD", placed_at=T0 + timedelta(days=1))]
    lots = [stock("L1", 3, sku="OLD"), po("P1:1", 10, TODAY + timedelta(days=2), sku="OLD")]

    allocs, out = run(lines, lots, backorderable={"OLD": False})

    assert {a.kind for a in allocs} == {"stock"}
    assert (out["A"].qty_allocated, out["A"].status) == (2, "allocated")
    assert out["A"].promised_date is not None
    assert (out["B"].qty_allocated, out["B"].qty_promised) == (1, 0)
    assert out["B"].status == "not_backorderable"
    assert out["B"].promised_date is None


def test_safety_stock_is_held_back_from_last_locations() -> None:
    assert usable_stock({"L2": 4, "L1": 3, "L3": 2}, 5) == {"L1": 3, "L2": 1, "L3": 0}
    assert usable_stock({"L1": 3}, 0) == {"L1": 3}
    assert usable_stock({"L1": 3, "L2": 1}, 10) == {"L1": 0, "L2": 0}


def test_negative_book_stock_counts_as_zero_and_negative_safety_stock_as_none() -> None:
    assert usable_stock({"L1": -4, "L2": 3}, 1) == {"L1": 0, "L2": 2}
    assert usable_stock({"L1": 2}, -3) == {"L1": 2}


def test_shortage_is_an_outcome_not_an_exception() -> None:
    lines = [line("A", 4), line("B", 2, sku="NONE")]

    allocs, out = run(lines, [stock("L1", 1)])

    assert [a.qty for a in allocs] == [1]
    assert (out["A"].qty_allocated, out["A"].qty_unpromised, out["A"].status) == (
        1,
        3,
        "partially_allocated",
    )
    assert (out["B"].qty_unpromised, out["B"].status, out["B"].priority_rank) == (
        2,
        "unpromised",
        1,
    )


def test_every_line_comes_back_exactly_once_even_without_supply() -> None:
    lines = [line(f"O{i}", 1 + i % 3, sku=f"S{i % 2}") for i in range(6)]

    _, outcomes = allocate(lines, [], key=KEY, tiers=TIERS, handling_days=1, products={})

    assert sorted(o.order_id for o in outcomes) == sorted(ln.order_id for ln in lines)
    assert all(o.qty_unpromised == o.qty_open and o.status == "unpromised" for o in outcomes)


def test_ranks_are_per_sku_starting_at_one() -> None:
    lines = [line("A", 1, sku="X"), line("B", 1, sku="Y"), line("C", 1, sku="X")]

    _, out = run(lines, [])

    assert (out["A"].priority_rank, out["C"].priority_rank, out["B"].priority_rank) == (1, 2, 1)


def test_empty_lots_are_skipped() -> None:
    allocs, out = run([line("A", 1)], [stock("L1", 0), stock("L2", 1)])

    assert [(a.ref, a.qty) for a in allocs] == [("L2", 1)]
    assert out["A"].status == "allocated"


def test_same_inputs_give_the_same_result_whatever_their_order() -> None:
    lines = [
        line(f"O{i}", 1 + i % 4, tier=TIERS[i % 4], placed_at=T0 + timedelta(i)) for i in range(8)
    ]
    lots = [stock("L1", 5), po("P1:1", 4, TODAY + timedelta(days=2)), stock("L2", 2)]

    first = allocate(lines, lots, key=KEY, tiers=TIERS, handling_days=1, products={})
    second = allocate(lines[::-1], lots[::-1], key=KEY, tiers=TIERS, handling_days=1, products={})

    assert first == second


@pytest.mark.parametrize(
    ("allocated", "promised", "backorderable", "expected"),
    [
        (3, 0, True, "allocated"),
        (3, 0, False, "allocated"),
        (1, 2, True, "promised"),
        (0, 3, True, "promised"),
        (1, 1, True, "partially_allocated"),
        (0, 1, True, "unpromised"),
        (1, 0, False, "not_backorderable"),
        (0, 0, False, "not_backorderable"),
    ],
)
def test_line_status(allocated: int, promised: int, backorderable: bool, expected: str) -> None:
    # a non-backorderable product refuses whatever stock did not cover
    refused = 0 if backorderable else 3 - allocated
    assert line_status(3, allocated, promised, refused) == expected
