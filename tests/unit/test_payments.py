"""The pure payment rules: when to capture or release, how much, under which key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backorders.domain.payments import (
    Authorization,
    PayLine,
    decide,
    format_minor,
    needs_reauthorization,
    preview_key,
    request_key,
    to_minor,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
AUTH = Authorization("stripe", "pi_1", 5000, NOW + timedelta(days=5))


def line(status: str, qty: int = 1, allocated: int | None = None, price: int = 1000) -> PayLine:
    alloc = qty if allocated is None and status == "allocated" else allocated or 0
    shipped = qty if status == "shipped" else 0
    return PayLine(status, qty, shipped, alloc, price)


def test_no_capture_before_every_line_has_stock_without_multicapture() -> None:
    lines = [line("allocated"), line("promised")]
    assert decide("O1", lines, AUTH, ship_complete=False, multicapture=False, now=NOW) is None
    done = decide(
        "O1",
        [line("allocated"), line("allocated")],
        AUTH,
        ship_complete=False,
        multicapture=False,
        now=NOW,
    )
    assert done is not None and (done.kind, done.amount, done.final_capture) == (
        "capture",
        2000,
        None,
    )


def test_ship_complete_order_is_captured_when_it_ships() -> None:
    allocated = [line("allocated"), line("allocated")]
    assert decide("O1", allocated, AUTH, ship_complete=True, multicapture=False, now=NOW) is None
    shipped = decide(
        "O1",
        [line("shipped"), line("shipped")],
        AUTH,
        ship_complete=True,
        multicapture=False,
        now=NOW,
    )
    assert shipped is not None and shipped.amount == 2000


def test_multicapture_captures_each_part_and_the_last_is_final() -> None:
    first = decide(
        "O1",
        [line("allocated"), line("unpromised")],
        AUTH,
        ship_complete=False,
        multicapture=True,
        now=NOW,
    )
    assert first is not None and (first.amount, first.final_capture) == (1000, False)
    after = Authorization("stripe", "pi_1", 5000, AUTH.expires_at, captured_before=1000, captures=1)
    last = decide(
        "O1",
        [line("allocated"), line("allocated")],
        after,
        ship_complete=False,
        multicapture=True,
        now=NOW,
    )
    assert last is not None and (last.amount, last.final_capture) == (1000, True)
    assert last.key != first.key


def test_release_when_every_line_is_cancelled_or_refused() -> None:
    r = decide(
        "O1",
        [line("cancelled"), line("not_backorderable")],
        AUTH,
        ship_complete=False,
        multicapture=False,
        now=NOW,
    )
    assert r is not None and (r.kind, r.amount) == ("release", None)


def test_nothing_after_expiry_or_once_closed() -> None:
    ready = [line("allocated")]
    assert (
        decide("O1", ready, AUTH, ship_complete=False, multicapture=False, now=AUTH.expires_at)
        is None
    )
    closed = Authorization("stripe", "pi_1", 5000, AUTH.expires_at, closed=True)
    assert decide("O1", ready, closed, ship_complete=False, multicapture=True, now=NOW) is None


def test_keys_are_deterministic_and_previews_never_collide() -> None:
    k = request_key("stripe", "pi_1", "O1", "capture", 2000, None)
    assert k == request_key("stripe", "pi_1", "O1", "capture", 2000, None)
    assert k != request_key("stripe", "pi_1", "O1", "capture", 2000, True)
    assert k.startswith("bo_") and len(k) <= 255 and preview_key(k) != k


def test_amounts_in_the_smallest_currency_unit() -> None:
    assert to_minor(Decimal("15.50"), "usd") == 1550
    assert to_minor(Decimal("1500"), "JPY") == 1500
    assert to_minor(Decimal("1.234"), "KWD") == 1234
    assert format_minor(123456, "usd") == "1,234.56 USD" and format_minor(500, "JPY") == "500 JPY"


def test_authorization_expiring_before_the_promised_date_needs_renewal() -> None:
    exp = NOW + timedelta(days=3)
    assert needs_reauthorization(exp, date(2026, 11, 30), complete=False, closed=False)
    assert needs_reauthorization(exp, None, complete=False, closed=False)  # no date yet
    assert not needs_reauthorization(exp, date(2026, 11, 25), complete=False, closed=False)
    assert not needs_reauthorization(exp, date(2026, 11, 30), complete=True, closed=False)


STATUSES = ["allocated", "partially_allocated", "promised", "unpromised", "not_backorderable",
            "shipped", "cancelled"]  # fmt: skip


def line_state(draw: st.DrawFn, qty: int) -> tuple[str, int]:
    """A line's status after some run, and its units from stock (shared with the SQL test)."""
    s = draw(st.sampled_from(STATUSES))
    if s == "partially_allocated" and qty > 1:
        return s, draw(st.integers(1, qty - 1))
    return s, qty if s == "allocated" else 0


@st.composite
def runs(draw: st.DrawFn) -> list[list[PayLine]]:
    """An order's lines over a few runs: each run, each line in some state."""
    n = draw(st.integers(1, 4))
    prices = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    qtys = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    out = []
    for _ in range(draw(st.integers(1, 6))):
        states = []
        for q, p in zip(qtys, prices, strict=True):
            s, alloc = line_state(draw, q)
            states.append(PayLine(s, q, q if s == "shipped" else 0, alloc, p))
        out.append(states)
    return out


@settings(max_examples=300, deadline=None)
@given(
    history=runs(),
    authorized=st.integers(1, 30000),
    multicapture=st.booleans(),
    ship_complete=st.booleans(),
)
def test_over_capture_is_impossible_and_single_capture_is_once(
    history: list[list[PayLine]], authorized: int, multicapture: bool, ship_complete: bool
) -> None:
    """Whatever the lines do run after run: captured <= authorized; one capture without multicapture."""
    auth = Authorization("stripe", "pi_1", authorized, NOW + timedelta(days=30))
    keys = set()
    for lines in history:
        r = decide(
            "O1", lines, auth, ship_complete=ship_complete, multicapture=multicapture, now=NOW
        )
        if r is None:
            continue
        assert r.key not in keys  # every request its own key
        keys.add(r.key)
        captured = auth.captured_before + (r.amount or 0)
        assert r.amount is None or r.amount > 0
        auth = Authorization(
            "stripe",
            "pi_1",
            authorized,
            auth.expires_at,
            captured_before=captured,
            captures=auth.captures + (r.kind == "capture"),
            closed=r.kind == "release" or r.final_capture in (True, None),
        )
        assert auth.captured_before <= authorized
    assert multicapture or auth.captures <= 1
