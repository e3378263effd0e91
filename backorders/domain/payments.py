"""When an order's payment is captured or released, for how much, and under which key.

The pure reference of sql/payments/new_requests.sql (docs/payments.md): one order at a
time, what the queue step decides for every order at once. Never capture before stock
is allocated, never more than the authorization, never after it expired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

RequestKind = Literal["capture", "release"]

# Stripe's zero-decimal and three-decimal currencies (its "Supported currencies" page):
# an amount is in the currency's smallest unit, e.g. cents for USD, yen for JPY.
ZERO_DECIMAL = (
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
    "VUV", "XAF", "XOF", "XPF",
)  # fmt: skip
THREE_DECIMAL = ("BHD", "JOD", "KWD", "OMR", "TND")
READY = frozenset({"allocated", "shipped"})  # line statuses whose units have stock
KEY_VERSION = "pay1"


def minor_exponent(currency: str) -> int:
    """Digits after the point of the currency's smallest unit (2 for USD, 0 for JPY)."""
    c = currency.upper()
    return 0 if c in ZERO_DECIMAL else 3 if c in THREE_DECIMAL else 2


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount (a unit price) in the currency's smallest unit, rounded half away from 0."""
    scaled = amount * (Decimal(10) ** minor_exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def format_minor(amount: int, currency: str) -> str:
    """An amount in minor units as a person reads it: 123456 USD -> '1,234.56 USD'."""
    exp = minor_exponent(currency)
    major = Decimal(amount).scaleb(-exp)
    return f"{major:,.{exp}f} {currency.upper()}"


def request_key(
    provider: str,
    payment_ref: str,
    order_id: str,
    kind: RequestKind,
    captured_after: int,
    final_capture: bool | None,
) -> str:
    """The idempotency key of one request: the same event always gets the same key.

    `captured_after` is what this order's captures ask for, this one included (for a
    release, what was captured before it): it only grows, so every capture of an order
    has a key of its own, and a request queued again after a crash has the same one.
    """
    final = "" if final_capture is None else str(final_capture).lower()
    raw = "\x1f".join(
        [KEY_VERSION, provider, payment_ref, order_id, kind, str(captured_after), final]
    )
    return "bo_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def preview_key(key: str) -> str:
    """A dry run's key for the request `key`: a preview never blocks the real request."""
    return "bo_" + hashlib.sha256(f"preview\x1f{key}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class PayLine:
    """One line of an order as the allocation left it, priced in minor units."""

    status: str
    qty_ordered: int
    qty_shipped: int
    qty_allocated: int
    unit_minor: int
    promised_date: date | None = None


@dataclass(frozen=True)
class Authorization:
    """An order's payment authorization and what earlier (real) requests asked of it."""

    provider: str
    payment_ref: str
    amount: int
    expires_at: datetime
    captured_before: int = 0  # what earlier captures asked for
    captures: int = 0  # how many captures were queued before
    closed: bool = False  # a final capture or a release was queued before


@dataclass(frozen=True)
class PayRequest:
    """One request the queue step decides: capture `amount` (final or not), or release."""

    kind: RequestKind
    amount: int | None
    final_capture: bool | None
    key: str


def ready_value(lines: Sequence[PayLine]) -> int:
    """The value whose stock is there: shipped units, and allocated units of live lines."""
    return sum(
        (ln.qty_shipped + (0 if ln.status == "cancelled" else ln.qty_allocated)) * ln.unit_minor
        for ln in lines
    )


def is_complete(lines: Sequence[PayLine], *, ship_complete: bool) -> bool:
    """Every live line has its stock (ship-complete orders: has shipped), and some value."""
    ready = {"shipped"} if ship_complete else READY
    return all(ln.status in ready for ln in lines if ln.status != "cancelled") and any(
        ln.status != "cancelled" or ln.qty_shipped > 0 for ln in lines
    )


def is_dead(lines: Sequence[PayLine]) -> bool:
    """Every line is cancelled or refused (not backorderable), and nothing shipped."""
    return bool(lines) and all(
        ln.status in ("cancelled", "not_backorderable") and ln.qty_shipped == 0 for ln in lines
    )


def decide(
    order_id: str,
    lines: Sequence[PayLine],
    auth: Authorization,
    *,
    ship_complete: bool,
    multicapture: bool,
    now: datetime,
) -> PayRequest | None:
    """The request this order's lines deserve now against what was asked before, or None.

    Without multicapture: one capture when the order is complete (`is_complete`), of the
    ready value up to the authorization (Stripe releases the rest). With it: a capture of
    each newly ready part (final_capture false) and a final one at completion, never more
    than the authorization in all; a completed order with nothing left to capture is
    released. Every line cancelled or refused: a release. Never after expiry.
    """
    if auth.closed or now >= auth.expires_at:
        return None
    if is_dead(lines) or (multicapture and auth.captures and not _live(lines)):
        return _request(order_id, auth, "release", None, None)
    complete = is_complete(lines, ship_complete=ship_complete)
    target = min(ready_value(lines), auth.amount)
    if not multicapture:
        if not complete or auth.captures or target <= 0:
            return None
        return _request(order_id, auth, "capture", target, None)
    delta = target - auth.captured_before
    if complete:
        if delta > 0:
            return _request(order_id, auth, "capture", delta, True)
        return _request(order_id, auth, "release", None, None) if auth.captures else None
    if ship_complete or delta <= 0:
        return None
    return _request(order_id, auth, "capture", delta, False)


def _live(lines: Sequence[PayLine]) -> bool:
    """Some line is neither cancelled nor refused."""
    return any(ln.status not in ("cancelled", "not_backorderable") for ln in lines)


def _request(
    order_id: str,
    auth: Authorization,
    kind: RequestKind,
    amount: int | None,
    final: bool | None,
) -> PayRequest:
    after = auth.captured_before + (amount or 0)
    key = request_key(auth.provider, auth.payment_ref, order_id, kind, after, final)
    return PayRequest(kind, amount, final, key)


def needs_reauthorization(
    expires_at: datetime, promised: date | None, *, complete: bool, closed: bool
) -> bool:
    """The authorization lapses before the order can be captured: ask the customer again.

    True when the order is still to be captured (not complete, nothing final queued) and
    its promised date is after the expiry day, or it has no date at all yet.
    """
    if complete or closed:
        return False
    return promised is None or promised > expires_at.date()
