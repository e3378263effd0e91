"""The replenishment formulas and advice of the pure core, on closed-form cases and properties."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backorders.domain.replenishment import (
    AdviceInput,
    SupplierOption,
    advise,
    choose_supplier,
    daily_demand,
    reorder_point,
    safety_stock,
    suggested_qty,
    z_value,
)

pytestmark = pytest.mark.unit

BASE = AdviceInput(
    sku="S1",
    location_id="WH",
    active=True,
    window_days=90,
    demand_units=180,
    daily_demand=2.0,
    demand_sd=3.0,
    lead_time=4.0,
    lead_time_sd=4.0,
    lead_time_source="supplier_sku",
    lead_time_samples=5,
    supplier_id="SUP-1",
    on_time_rate=0.8,
    on_hand=10,
    on_order=0,
    committed=4,
    backordered=3,
    pack_size=None,
    configured_safety_stock=5,
)


def test_z_of_the_usual_service_levels_is_the_normal_quantile() -> None:
    assert z_value(0.5) == 0.0
    assert z_value(0.95) == pytest.approx(1.6449, abs=1e-4)
    assert z_value(0.99) == pytest.approx(2.3263, abs=1e-4)


@pytest.mark.parametrize("level", [0.0, 0.3, 1.0, 1.5, -0.95])
def test_service_level_outside_half_to_one_is_rejected(level: float) -> None:
    with pytest.raises(ValueError, match="service level"):
        z_value(level)


def test_daily_demand_counts_the_days_without_orders_as_zero() -> None:
    # daily totals 2, 0, 4 (only the two order days are summed): mean 2, sample sd 2
    assert daily_demand(6, 2**2 + 4**2, 3) == pytest.approx((2.0, 2.0))
    # the same units every day: no variability
    assert daily_demand(10, 10 * 1**2, 10) == pytest.approx((1.0, 0.0))
    assert daily_demand(0, 0.0, 90) == (0.0, 0.0)
    assert daily_demand(5, 25.0, 1) == (5.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        daily_demand(1, 1.0, 0)


def test_safety_stock_is_z_times_the_combined_sd_of_lead_time_demand() -> None:
    # L * sd_d^2 + d^2 * sd_L^2 = 4 * 9 + 4 * 16 = 100: the square root is 10
    assert safety_stock(1.5, 2.0, 3.0, 4.0, 4.0) == pytest.approx(15.0)
    # without lead-time variability only the demand term is left: sqrt(4 * 9) = 6
    assert safety_stock(2.0, 2.0, 3.0, 4.0, 0.0) == pytest.approx(12.0)
    # without demand variability only the lead-time term: sqrt(4 * 16) = 8
    assert safety_stock(1.0, 2.0, 0.0, 4.0, 4.0) == pytest.approx(8.0)


def test_reorder_point_is_lead_time_demand_plus_safety_stock() -> None:
    assert reorder_point(2.0, 4.0, 15.0) == pytest.approx(23.0)
    assert reorder_point(0.0, 30.0, 0.0) == 0.0


def test_suggested_quantity_orders_up_to_the_cover_and_rounds_up_to_whole_packs() -> None:
    # up to ROP 10 + 2/day * 10 days = 30, from a position of 5: 25 units
    assert suggested_qty(5, 10.0, 2.0, 10, None) == 25
    assert suggested_qty(5, 10.0, 2.0, 10, 12) == 36  # 3 packs of 12
    assert suggested_qty(5, 10.0, 2.0, 10, 25) == 25  # exactly one pack, not two
    assert suggested_qty(-7, 0.0, 0.0, 30, None) == 7  # no demand: cover the backorders
    assert suggested_qty(10, 10.0, 2.0, 10, 5) == 0  # at the reorder point: no order


def test_float_noise_never_adds_a_pack() -> None:
    # ROP 0.1 + 0.1/day * 29 days is 3.0000000000000004 in floats: 3 units, not 4
    assert suggested_qty(0, 0.1, 0.1, 29, None) == 3
    assert suggested_qty(0, 0.1, 0.1, 29, 3) == 3


def test_best_supplier_is_the_most_punctual_then_the_fastest() -> None:
    def opt(sid: str, rate: float | None, lt: float | None) -> SupplierOption:
        return SupplierOption(sid, rate, lt, 0.0, "supplier", 3)

    late_fast, punctual_slow = opt("A", 0.5, 5.0), opt("B", 0.9, 20.0)
    assert choose_supplier([late_fast, punctual_slow]) == punctual_slow
    same_rate_faster = opt("C", 0.9, 10.0)
    assert choose_supplier([punctual_slow, same_rate_faster]) == same_rate_faster
    unmeasured = opt("D", None, 1.0)
    assert choose_supplier([unmeasured, late_fast]) == late_fast
    assert choose_supplier([opt("F", None, 3.0), opt("E", None, 3.0)]).supplier_id == "E"
    assert choose_supplier([]) is None


def test_advice_below_the_reorder_point_orders_and_says_why() -> None:
    z = 1.5
    a = advise(BASE, z, cover_days=10)
    # SS 15, ROP 23, position 10 - 4 - 3 = 3: up to 23 + 20 = 43 -> 40 units
    assert a.safety_stock == pytest.approx(15.0)
    assert a.reorder_point == pytest.approx(23.0)
    assert a.suggested_qty == 40
    assert a.safety_stock_gap == pytest.approx(5 - 15.0)
    assert "position 3 (on hand 10 + on order 0 - committed 4 - backordered 3)" in a.reason
    assert "below the reorder point 23" in a.reason and "order 40" in a.reason
    assert "supplier SUP-1 (on time 80%)" in a.reason
    assert "configured safety stock 5 is 10 below the computed 15" in a.reason


def test_advice_covering_the_reorder_point_orders_nothing() -> None:
    a = advise(replace(BASE, on_order=30), 1.5, cover_days=10)
    assert a.suggested_qty == 0
    assert "position 33" in a.reason and "covers the reorder point 23" in a.reason


def test_one_received_po_says_the_lead_time_variability_is_unknown() -> None:
    a = advise(replace(BASE, lead_time_samples=1, lead_time_sd=0.0), 1.5, 10)
    assert "one receipt: lead-time variability unknown, sd_L = 0" in a.reason
    assert a.safety_stock == pytest.approx(1.5 * math.sqrt(4 * 9))


def test_no_demand_and_no_lead_time_are_said_plainly() -> None:
    quiet = advise(replace(BASE, demand_units=0, daily_demand=0.0, demand_sd=0.0), 1.5, 10)
    assert "no demand in the last 90 d" in quiet.reason
    assert quiet.safety_stock == 0.0 and quiet.suggested_qty == 0
    unknown = advise(replace(BASE, lead_time=None, lead_time_source="none"), 1.5, 10)
    assert unknown.reorder_point is None and unknown.suggested_qty == 0
    assert "no lead time known" in unknown.reason
    assert unknown.reason.endswith("set products.lead_time_days")


def test_discontinued_sku_is_never_reordered() -> None:
    a = advise(replace(BASE, active=False, on_hand=0), 1.5, 10)
    assert a.suggested_qty == 0 and a.reason.startswith("discontinued: not replenished")


@given(
    on_hand=st.integers(0, 500),
    on_order=st.integers(0, 500),
    committed=st.integers(0, 500),
    backordered=st.integers(0, 500),
    d=st.floats(0, 50),
    sd_d=st.floats(0, 50),
    lt=st.floats(0, 120),
    sd_lt=st.floats(0, 60),
    level=st.floats(0.5, 0.9999),
    cover=st.integers(0, 365),
    pack=st.one_of(st.none(), st.integers(1, 100)),
)
def test_advice_never_orders_when_the_position_covers_the_reorder_point(
    on_hand: int,
    on_order: int,
    committed: int,
    backordered: int,
    d: float,
    sd_d: float,
    lt: float,
    sd_lt: float,
    level: float,
    cover: int,
    pack: int | None,
) -> None:
    a = replace(
        BASE,
        on_hand=on_hand,
        on_order=on_order,
        committed=committed,
        backordered=backordered,
        daily_demand=d,
        demand_sd=sd_d,
        lead_time=lt,
        lead_time_sd=sd_lt,
        pack_size=pack,
    )
    advice = advise(a, z_value(level), cover)
    assert advice.reorder_point is not None
    if a.position >= advice.reorder_point:
        assert advice.suggested_qty == 0
    else:
        # an order brings the position to at least the reorder point plus the cover
        assert advice.suggested_qty > 0
        assert a.position + advice.suggested_qty >= advice.reorder_point + d * cover - 1e-6
        assert advice.suggested_qty % (pack or 1) == 0
