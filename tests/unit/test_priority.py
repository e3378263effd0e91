"""The priority key: who is served first, by the one named sort key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backorders.domain.priority import (
    PRIORITY_FIELDS,
    TIE_BREAK,
    DemandLine,
    order_by_sql,
    sort_key,
    tier_rank,
    validate_key,
)

pytestmark = pytest.mark.unit

KEY = ["order_priority", "customer_tier", "placed_at", "order_value"]
TIERS = ["platinum", "gold", "silver", "standard"]
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def line(
    order_id: str,
    *,
    line_no: int = 1,
    priority: int = 0,
    tier: str = "standard",
    placed_at: datetime = T0,
    value: str = "100.00",
    sku: str = "SKU-1",
    qty: int = 1,
) -> DemandLine:
    return DemandLine(order_id, line_no, sku, qty, priority, tier, placed_at, Decimal(value))


def served_order(
    lines: list[DemandLine], key: list[str] = KEY, tiers: list[str] = TIERS
) -> list[str]:
    ranked = sorted(lines, key=lambda ln: sort_key(ln, key, tiers))
    return [f"{ln.order_id}:{ln.line_no}" for ln in ranked]


def test_platinum_customer_is_served_before_older_standard_order() -> None:
    old_standard = line("A", tier="standard", placed_at=T0 - timedelta(days=30))
    new_platinum = line("B", tier="platinum", placed_at=T0)

    assert served_order([old_standard, new_platinum]) == ["B:1", "A:1"]


def test_higher_order_priority_beats_tier() -> None:
    platinum = line("A", tier="platinum", priority=0)
    urgent_standard = line("B", tier="standard", priority=5)

    assert served_order([platinum, urgent_standard]) == ["B:1", "A:1"]


def test_older_order_is_served_first_within_the_same_tier() -> None:
    newer = line("A", placed_at=T0 + timedelta(hours=1))
    older = line("B", placed_at=T0)

    assert served_order([newer, older]) == ["B:1", "A:1"]


def test_larger_order_value_is_served_first_when_all_else_ties() -> None:
    small = line("A", value="10.00")
    large = line("B", value="10.01")

    assert served_order([small, large]) == ["B:1", "A:1"]


def test_configured_key_order_changes_who_is_first() -> None:
    old_standard = line("A", tier="standard", placed_at=T0 - timedelta(days=1))
    new_gold = line("B", tier="gold", placed_at=T0)

    tier_first = served_order([old_standard, new_gold], ["customer_tier", "placed_at"])
    date_first = served_order([old_standard, new_gold], ["placed_at", "customer_tier"])

    assert tier_first == ["B:1", "A:1"]
    assert date_first == ["A:1", "B:1"]


def test_fields_left_out_of_the_key_are_ignored() -> None:
    urgent = line("B", priority=9, tier="standard")
    platinum = line("A", priority=0, tier="platinum")

    assert served_order([urgent, platinum], ["customer_tier"]) == ["A:1", "B:1"]


def test_tie_break_is_order_id_then_line_no() -> None:
    lines = [
        line("B", line_no=1),
        line("A", line_no=2),
        line("A", line_no=1),
        line("A", line_no=10),
    ]

    assert served_order(lines) == ["A:1", "A:2", "A:10", "B:1"]
    assert served_order(lines, []) == ["A:1", "A:2", "A:10", "B:1"]


def test_unknown_tier_ranks_last() -> None:
    assert tier_rank("platinum", TIERS) == 0
    assert tier_rank("standard", TIERS) == 3
    assert tier_rank("bronze", TIERS) == len(TIERS)
    unknown = line("A", tier="bronze")
    standard = line("B", tier="standard")
    assert served_order([unknown, standard]) == ["B:1", "A:1"]


def test_configured_tiers_define_the_tier_order() -> None:
    a = line("A", tier="std")
    b = line("B", tier="vip")

    assert served_order([a, b], ["customer_tier"], ["vip", "std"]) == ["B:1", "A:1"]
    assert served_order([a, b], ["customer_tier"], ["std", "vip"]) == ["A:1", "B:1"]


@pytest.mark.parametrize(
    "bad",
    [["order_priority", "customer_name"], ["placed_at", "placed_at"], ["1; drop table orders"]],
)
def test_invalid_priority_key_raises_value_error(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        validate_key(bad)
    with pytest.raises(ValueError):
        order_by_sql(bad)
    with pytest.raises(ValueError):
        sort_key(line("A"), bad, TIERS)


def test_order_by_sql_follows_the_key_and_ends_with_the_tie_break() -> None:
    sql = order_by_sql(["placed_at", "order_priority"])

    assert sql == "placed_at asc, order_priority desc, order_id asc, line_no asc"
    assert TIE_BREAK == ("order_id", "line_no")


def test_order_by_sql_uses_only_whitelisted_columns() -> None:
    sql = order_by_sql(KEY)
    columns = [part.split()[0] for part in sql.split(", ")]

    assert columns == [*(PRIORITY_FIELDS[k][0] for k in KEY), *TIE_BREAK]
    assert validate_key(KEY) == tuple(KEY)
