"""Who is served first: one named sort key, used by the SQL allocator and the reference one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# field name -> (column in the demand mart, SQL direction); higher priority, better
# tier, older order and larger order value are served first.
PRIORITY_FIELDS: dict[str, tuple[str, str]] = {
    "order_priority": ("order_priority", "desc"),
    "customer_tier": ("tier_rank", "asc"),
    "placed_at": ("placed_at", "asc"),
    "order_value": ("order_value", "desc"),
}
# Appended to every key so that the order is total: same inputs, same ranks.
TIE_BREAK: tuple[str, ...] = ("order_id", "line_no")


@dataclass(frozen=True)
class DemandLine:
    """An open order line waiting for supply, with the facts the priority key reads."""

    order_id: str
    line_no: int
    sku: str
    qty: int
    order_priority: int
    tier: str
    placed_at: datetime
    order_value: Decimal
    ship_complete: bool = False  # the order ships only when all its open lines are covered
    committed: bool = False  # held stock in the last run (released for picking): served first


def validate_key(key: Sequence[str]) -> tuple[str, ...]:
    """Check a configured priority key; return it as a tuple."""
    unknown = [k for k in key if k not in PRIORITY_FIELDS]
    if unknown:
        raise ValueError(f"unknown priority field(s) {unknown}; known: {sorted(PRIORITY_FIELDS)}")
    if len(set(key)) != len(key):
        raise ValueError(f"priority key repeats a field: {list(key)}")
    return tuple(key)


def tier_rank(tier: str, tiers: Sequence[str]) -> int:
    """Position of a tier in the configured list; unknown tiers rank last."""
    return tiers.index(tier) if tier in tiers else len(tiers)


def order_by_sql(key: Sequence[str]) -> str:
    """The ORDER BY list for the demand mart (built only from the fixed field table)."""
    parts = [f"{PRIORITY_FIELDS[k][0]} {PRIORITY_FIELDS[k][1]}" for k in validate_key(key)]
    return ", ".join([*parts, *(f"{c} asc" for c in TIE_BREAK)])


def sort_key(
    line: DemandLine, key: Sequence[str], tiers: Sequence[str]
) -> tuple[int | datetime | Decimal | str, ...]:
    """Python sort key equal to order_by_sql: sorting ascending serves the first line first."""
    values: list[int | datetime | Decimal | str] = []
    for k in validate_key(key):
        if k == "order_priority":
            values.append(-line.order_priority)
        elif k == "customer_tier":
            values.append(tier_rank(line.tier, tiers))
        elif k == "placed_at":
            values.append(line.placed_at)
        else:
            values.append(-line.order_value)
    return (*values, line.order_id, line.line_no)
