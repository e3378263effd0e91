"""Replenishment advice, pure: safety stock, reorder point, order quantity, supplier, reason.

The standard continuous-review model with demand and lead-time variability:

    safety stock   SS  = z * sqrt(L * sd_d**2 + d**2 * sd_L**2)
    reorder point  ROP = d * L + SS
    order up to    S   = ROP + d * cover_days     (when the position is below ROP)

d, sd_d: demand per day and its standard deviation; L, sd_L: lead time in days and its
standard deviation; z: the standard normal quantile of the service level (the chance
of not running out during one lead time). The adapter (backorders.adapters.replenish)
measures the inputs set-based in DuckDB and applies `advise` to one row per sku and
location.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

# where a row's lead time came from, most to least measured
LEAD_TIME_SOURCES = ("supplier_sku", "supplier", "product", "none")


def z_value(service_level: float) -> float:
    """The standard normal quantile of a service level in [0.5, 1) (0.95 -> 1.645)."""
    if not 0.5 <= service_level < 1.0:
        raise ValueError(f"service level {service_level} must be at least 0.5 and below 1")
    return NormalDist().inv_cdf(service_level)


def daily_demand(units: int, sum_of_squares: float, days: int) -> tuple[float, float]:
    """Mean and sample sd of daily totals, from their sum and sum of squares over `days` days.

    The days without an order are in `days` and count as 0, so only the days with orders
    need to be summed (set-based, in SQL).
    """
    if days < 1:
        raise ValueError(f"a demand window of {days} days is empty")
    mean = units / days
    if days < 2:
        return mean, 0.0
    var = (sum_of_squares - units * units / days) / (days - 1)
    return mean, math.sqrt(max(var, 0.0))  # max: rounding can make a zero variance -1e-16


def safety_stock(
    z: float, daily_demand: float, demand_sd: float, lead_time: float, lead_time_sd: float
) -> float:
    """z * sqrt(L * sd_d^2 + d^2 * sd_L^2): the buffer for demand and lead-time variability."""
    return z * math.sqrt(lead_time * demand_sd**2 + daily_demand**2 * lead_time_sd**2)


def reorder_point(daily_demand: float, lead_time: float, safety: float) -> float:
    """d * L + SS: order when the inventory position falls below it."""
    return daily_demand * lead_time + safety


def suggested_qty(
    position: float, rop: float, daily_demand: float, cover_days: int, pack_size: int | None
) -> int:
    """Units to order: 0 when the position covers the reorder point, else up to ROP + cover.

    Rounded up to whole packs (a pack size of None or below 1 means single units).
    """
    if position >= rop:
        return 0
    need = rop + daily_demand * cover_days - position
    pack = pack_size if pack_size and pack_size > 1 else 1
    # round first: 3 * 0.1 / 0.1 is 3.0000000000000004, which must not become 4 packs
    return max(1, math.ceil(round(need / pack, 6))) * pack


@dataclass(frozen=True)
class SupplierOption:
    """A supplier that can deliver a sku, with what was measured of it."""

    supplier_id: str
    on_time_rate: float | None  # share of received PO lines on or before their first ETA
    lead_time: float | None  # days
    lead_time_sd: float
    lead_time_source: str  # supplier_sku or supplier (measured), product, none
    samples: int  # received PO lines the lead time was measured on


def choose_supplier(options: Iterable[SupplierOption]) -> SupplierOption | None:
    """The best supplier: highest on-time rate (measured before unmeasured), then lead time."""
    return min(
        options,
        key=lambda o: (
            o.on_time_rate is None,
            -(o.on_time_rate or 0.0),
            o.lead_time is None,
            o.lead_time or 0.0,
            o.supplier_id,
        ),
        default=None,
    )


@dataclass(frozen=True)
class AdviceInput:
    """What was measured for one sku at one location, as of a run."""

    sku: str
    location_id: str
    active: bool
    window_days: int  # days of demand history used (the window, or less when history is shorter)
    demand_units: int
    daily_demand: float
    demand_sd: float
    lead_time: float | None
    lead_time_sd: float
    lead_time_source: str
    lead_time_samples: int
    supplier_id: str | None
    on_time_rate: float | None
    on_hand: int
    on_order: int
    committed: int
    backordered: int
    pack_size: int | None
    configured_safety_stock: int

    @property
    def position(self) -> int:
        """Inventory position: on hand + on order - committed - open backorders."""
        return self.on_hand + self.on_order - self.committed - self.backordered


@dataclass(frozen=True)
class Advice:
    """The advice for one sku and location: the computed figures and why."""

    safety_stock: float | None
    reorder_point: float | None
    suggested_qty: int
    safety_stock_gap: float | None  # configured (products.safety_stock) minus computed
    reason: str


def _n(v: float) -> str:
    """A figure for a sentence, to one decimal (none when it is .0): 12, 12.5, 1,234.6."""
    return f"{v:,.1f}".removesuffix(".0")


def _lead_time_text(a: AdviceInput) -> str:
    if a.lead_time is None:
        return "no lead time known (no received PO of its suppliers, products.lead_time_days empty)"
    if a.lead_time_source == "product":
        return f"lead time {_n(a.lead_time)} d from products.lead_time_days (no received PO)"
    of = "of this sku" if a.lead_time_source == "supplier_sku" else "of the supplier (other skus)"
    text = f"lead time {_n(a.lead_time)} ± {_n(a.lead_time_sd)} d from {a.lead_time_samples} "
    text += f"received PO line(s) {of}"
    if a.lead_time_samples == 1:
        text += " (one receipt: lead-time variability unknown, sd_L = 0)"
    return text


def _supplier_text(a: AdviceInput) -> str:
    if a.supplier_id is None:
        return "no supplier known (no PO of this sku)"
    rate = "not measured" if a.on_time_rate is None else f"{a.on_time_rate:.0%}"
    return f"supplier {a.supplier_id} (on time {rate})"


def advise(a: AdviceInput, z: float, cover_days: int) -> Advice:
    """Safety stock, reorder point, the quantity to order (if any) and the reason, in words."""
    demand = (
        f"demand {_n(a.daily_demand)} ± {_n(a.demand_sd)}/day over {a.window_days} d"
        if a.demand_units
        else f"no demand in the last {a.window_days} d"
    )
    position = (
        f"position {a.position:,} (on hand {a.on_hand:,} + on order {a.on_order:,} "
        f"- committed {a.committed:,} - backordered {a.backordered:,})"
    )
    facts = f"{demand}; {_lead_time_text(a)}; {_supplier_text(a)}"
    if a.lead_time is None:
        return Advice(None, None, 0, None, f"{position}; {facts}: set products.lead_time_days")
    ss = safety_stock(z, a.daily_demand, a.demand_sd, a.lead_time, a.lead_time_sd)
    rop = reorder_point(a.daily_demand, a.lead_time, ss)
    gap = a.configured_safety_stock - ss
    policy = (
        f"configured safety stock {a.configured_safety_stock:,} is "
        + (f"{_n(abs(gap))} {'above' if gap > 0 else 'below'}" if abs(gap) >= 0.05 else "at")
        + f" the computed {_n(ss)}"
    )
    if not a.active:
        return Advice(ss, rop, 0, gap, f"discontinued: not replenished; {position}; {facts}")
    qty = suggested_qty(a.position, rop, a.daily_demand, cover_days, a.pack_size)
    if qty == 0:
        head = f"{position} covers the reorder point {_n(rop)}"
    else:
        packs = f", in packs of {a.pack_size}" if a.pack_size and a.pack_size > 1 else ""
        head = (
            f"{position} is below the reorder point {_n(rop)} (lead-time demand "
            f"{_n(rop - ss)} + safety stock {_n(ss)}): order {qty:,} to cover {cover_days} d "
            f"beyond it{packs}"
        )
    return Advice(ss, rop, qty, gap, f"{head}; {facts}; {policy}")
