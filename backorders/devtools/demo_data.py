"""Deterministic demo data: all eight feeds of the contract, in CSV, JSONL and Parquet.

The generator draws from seeded ``random.Random`` streams (one per feed, so a change to
one feed does not reshuffle the others), keeps every timestamp relative to
``DemoSpec.as_of`` and writes rows in a fixed order, so the same spec always gives
byte-identical files. It plants a handful of bad rows and one unusable file so a demo
run shows the quarantine at work; ``DemoManifest`` says how many and where.
"""

from __future__ import annotations

import csv
import functools
import math
import random
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from backorders.domain.contract import FEED_ORDER

__all__ = ["COLUMNS", "FEEDS", "DemoManifest", "DemoSpec", "generate"]

FEEDS: tuple[str, ...] = FEED_ORDER

# Column -> kind, in contract order. Kinds drive the per-format encoding.
_SCHEMAS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "str",
        "email": "str",
        "name": "str",
        "tier": "str",
        "locale": "str",
        "email_opt_in": "bool",
        "updated_at": "ts",
    },
    "products": {
        "sku": "str",
        "name": "str",
        "status": "str",
        "backorderable": "bool",
        "max_backorder_qty": "int",
        "safety_stock": "int",
        "lead_time_days": "int",
        "substitute_skus": "list",
        "updated_at": "ts",
    },
    "orders": {
        "order_id": "str",
        "customer_id": "str",
        "placed_at": "ts",
        "status": "str",
        "ship_complete": "bool",
        "priority": "int",
        "currency": "str",
        "updated_at": "ts",
        # optional: a Stripe authorization on some recent orders (docs/payments.md)
        "payment_provider": "str",
        "payment_ref": "str",
        "payment_amount": "int",
        "payment_currency": "str",
        "payment_expires_at": "ts",
    },
    "order_lines": {
        "order_id": "str",
        "line_no": "int",
        "sku": "str",
        "qty": "int",
        "unit_price": "money",
        "status": "str",
        "updated_at": "ts",
    },
    "stock": {"location_id": "str", "sku": "str", "on_hand": "int", "as_of": "ts"},
    "purchase_orders": {
        "po_id": "str",
        "line_no": "int",
        "supplier_id": "str",
        "sku": "str",
        "qty": "int",
        "location_id": "str",
        "expected_at": "date",
        "status": "str",
        "updated_at": "ts",
    },
    "supplier_updates": {
        "supplier_id": "str",
        "po_id": "str",
        "line_no": "int",
        "expected_at": "date",
        "qty_confirmed": "int",
        "reason": "str",
        "reported_at": "ts",
    },
    "shipments": {
        "shipment_id": "str",
        "order_id": "str",
        "line_no": "int",
        "sku": "str",
        "qty": "int",
        "location_id": "str",
        "shipped_at": "ts",
    },
}

COLUMNS: dict[str, tuple[str, ...]] = {feed: tuple(cols) for feed, cols in _SCHEMAS.items()}

TIERS: tuple[str, ...] = ("platinum", "gold", "silver", "standard")
WAREHOUSES: tuple[str, ...] = ("WH-EAST", "WH-WEST")
SUPPLIERS: tuple[str, ...] = tuple(f"SUP-{i:02d}" for i in range(1, 9))

# Higher tiers order more often and more often with priority.
_ORDER_WEIGHT: dict[str, float] = {"platinum": 3.0, "gold": 2.0, "silver": 1.5, "standard": 1.0}
# Cumulative P(priority 0), P(priority <= 1) per tier; the rest is priority 2.
_PRIORITY_CUTS: dict[str, tuple[float, float]] = {
    "platinum": (0.60, 0.90),
    "gold": (0.85, 0.97),
    "silver": (0.97, 0.995),
    "standard": (0.98, 0.997),
}

_MINUTE = 60
_HOUR = 3600
_DAY = 86400

_LOCALES: dict[str, tuple[float, str, str, tuple[str, ...], tuple[str, ...]]] = {
    # locale: (share, currency, mail domain, first names, last names)
    "en-US": (
        0.55,
        "USD",
        "example.com",
        ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis"),
    ),
    "en-GB": (
        0.20,
        "GBP",
        "example.co.uk",
        ("Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Jack", "Emily"),
        ("Taylor", "Wilson", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Hughes"),
    ),
    "de-DE": (
        0.15,
        "EUR",
        "example.de",
        ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Marie", "Jürgen", "Jörg"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Schäfer", "Groß"),
    ),
    "fr-FR": (
        0.10,
        "EUR",
        "example.fr",
        ("Louis", "Chloé", "Hugo", "Léa", "Lucas", "Manon", "Théo", "Élodie"),
        ("Martin", "Bernard", "Dubois", "Petit", "Durand", "Lefèvre", "Moreau", "Girard"),
    ),
}
_BAD_EMAILS: tuple[str, ...] = ("not-an-address", "n/a", "unknown")
_ADJECTIVES: tuple[str, ...] = (
    "Compact",
    "Heavy-Duty",
    "Stainless",
    "Pro",
    "Mini",
    "Industrial",
    "Smart",
    "Classic",
    "Outdoor",
    "Cordless",
)
_NOUNS: tuple[str, ...] = (
    "Widget",
    "Bracket",
    "Valve",
    "Sensor",
    "Cable",
    "Adapter",
    "Filter",
    "Pump",
    "Lamp",
    "Switch",
    "Drill",
    "Kettle",
)
_DELAY_REASONS: tuple[str, ...] = (
    "carrier delay",
    "port congestion",
    "raw material shortage",
    "production backlog",
    "customs hold",
)


@dataclass(frozen=True)
class DemoSpec:
    """What to generate: seed, size (linear in ``scale``) and the demo's "now"."""

    seed: int = 7
    scale: int = 1
    as_of: datetime = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

    def __post_init__(self) -> None:
        """Reject specs the generator cannot honour."""
        if self.as_of.tzinfo is None or self.as_of.utcoffset() is None:
            raise ValueError("DemoSpec.as_of must be timezone-aware")
        if self.scale < 1:
            raise ValueError("DemoSpec.scale must be >= 1")


@dataclass(frozen=True)
class DemoManifest:
    """What ``generate`` wrote.

    ``rows`` counts the data rows of the usable files of each feed, deliberately bad rows
    included; rows inside ``bad_files`` (rejected whole) are counted in neither ``rows``
    nor ``bad_rows``.
    """

    files: list[Path]
    rows: dict[str, int]
    bad_rows: dict[str, int]
    bad_files: list[Path]
    # the orders' Stripe authorizations: (payment_ref, amount in the smallest unit,
    # currency, expires_at as epoch seconds), for a local Stripe server to hold
    authorizations: list[tuple[str, int, str, int]] = field(default_factory=list)


Row = tuple[Any, ...]


@dataclass(slots=True, eq=False)
class _File:
    """One file to write: feed, name, format and rows (tuples in contract column order)."""

    feed: str
    name: str
    rows: list[Row]
    bad: int = 0
    columns: tuple[str, ...] | None = None  # defaults to the feed's contract columns


@dataclass(slots=True, eq=False)
class _Sku:
    sku: str
    rank: int  # 0 = most popular
    price_cents: int
    supplier: str
    locations: tuple[str, ...]
    status: str = "active"
    backorderable: bool = True


@dataclass(slots=True, eq=False)
class _Line:
    order_id: str
    line_no: int
    sku: str
    qty: int
    price_cents: int
    status: str
    updated_at: int


@dataclass(slots=True, eq=False)
class _Order:
    order_id: str
    customer_id: str
    placed_at: int
    status: str
    ship_complete: bool
    priority: int
    currency: str
    updated_at: int
    lines: list[_Line] = field(default_factory=list)
    shipped_at: int | None = None


@dataclass(slots=True, eq=False)
class _PoLine:
    sku: str
    qty: int


@dataclass(slots=True, eq=False)
class _Po:
    po_id: str
    supplier: str
    location: str
    expected_at: date
    status: str
    updated_at: int
    lines: list[_PoLine]


_NO_PAYMENT: tuple[None, ...] = (None,) * 5  # an order without an authorization


class _Gen:
    """Builds every feed's rows in memory; writing is separate."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.now = int(spec.as_of.timestamp())
        self.today = spec.as_of.astimezone(UTC).date()
        self.stamp = self.today.isoformat()
        self.authorizations: dict[str, tuple[Any, ...]] = {}  # by order, once orders are built

    def rng(self, stream: str) -> random.Random:
        """A random stream of its own per feed (str seeds hash with SHA-512: stable)."""
        return random.Random(f"{self.spec.seed}:{stream}")

    # -- customers -------------------------------------------------------------------

    def customers(self) -> list[_File]:
        rng = self.rng("customers")
        n = 400 * self.spec.scale
        tiers = _exact_shares(rng, n, (0.05, 0.15, 0.30, 0.50), TIERS)
        locales = rng.choices(list(_LOCALES), weights=[v[0] for v in _LOCALES.values()], k=n)
        bad_email = set(rng.sample(range(n), max(1, round(0.01 * n))))
        opted_out = set(rng.sample(range(n), max(2, round(0.03 * n))))
        rows: list[Row] = []
        self.customer_ids: list[str] = []
        self.customer_weight: list[float] = []
        self.currency: dict[str, str] = {}
        self.undeliverable: list[str] = []
        self.tier: dict[str, str] = {}
        for i in range(n):
            cid = f"C-{i + 1:06d}"
            name, email = self._person(rng, locales[i], i + 1)
            if i in bad_email:
                email = _BAD_EMAILS[len(self.undeliverable) % len(_BAD_EMAILS)]
                self.undeliverable.append(cid)
            updated = self.now - _HOUR - int(rng.random() * 399 * _DAY)
            rows.append((cid, email, name, tiers[i], locales[i], i not in opted_out, updated))
            self.customer_ids.append(cid)
            self.customer_weight.append(_ORDER_WEIGHT[tiers[i]])
            self.currency[cid] = _LOCALES[locales[i]][1]
            self.tier[cid] = tiers[i]
        # Bad row: a tier that is not configured. No order references this customer.
        locale = rng.choice(list(_LOCALES))
        cid = f"C-{n + 1:06d}"
        name, email = self._person(rng, locale, n + 1)
        bad = (cid, email, name, "diamond", locale, True, self.now - rng.randint(_HOUR, 30 * _DAY))
        self.bad_customer = cid
        rows.insert(rng.randint(1, n - 1), bad)
        return [_File("customers", f"customers_{self.stamp}.csv", rows, bad=1)]

    @staticmethod
    def _person(rng: random.Random, locale: str, n: int) -> tuple[str, str]:
        _, _, domain, firsts, lasts = _LOCALES[locale]
        first, last = rng.choice(firsts), rng.choice(lasts)
        return f"{first} {last}", f"{_ascii(first)}.{_ascii(last)}{n}@{domain}".lower()

    # -- products --------------------------------------------------------------------

    def products(self) -> list[_File]:
        rng = self.rng("products")
        n = 120 * self.spec.scale
        ranks = list(range(n))
        rng.shuffle(ranks)
        self.skus: list[_Sku] = []
        for i in range(n):
            locs = (rng.choice(WAREHOUSES),) if rng.random() < 0.6 else WAREHOUSES
            price = round(math.exp(rng.uniform(math.log(5.0), math.log(400.0))) * 100)
            self.skus.append(_Sku(f"SKU-{10001 + i}", ranks[i], price, rng.choice(SUPPLIERS), locs))
        by_rank = sorted(self.skus, key=lambda s: s.rank)
        # Zipf-like popularity: weight 1/(rank+1); the top 10 % take well over 40 % of lines.
        self.sku_cum_weights: list[float] = list(_accumulate(1.0 / (s.rank + 1) for s in self.skus))
        # Discontinued: mid-popularity skus, so some open lines hit them.
        for s in rng.sample(by_rank[n // 10 : n // 2], max(1, round(0.04 * n))):
            s.status, s.backorderable = "discontinued", False
        actives = [s for s in by_rank[n // 20 :] if s.status == "active"]
        for s in rng.sample(actives, max(2, round(0.03 * n))):
            s.backorderable = False
        orderable = [s for s in self.skus if s.status == "active" and s.backorderable]
        capped = {
            s.sku: rng.choice((30, 60, 120, 250))
            for s in rng.sample(
                [s for s in orderable if n // 10 <= s.rank < n // 2], max(2, round(0.08 * n))
            )
        }
        with_subs = {s.sku for s in self.skus if s.status == "discontinued"}
        with_subs |= {s.sku for s in rng.sample(self.skus, max(2, round(0.08 * n)))}
        rows: list[Row] = []
        for s in self.skus:
            subs: list[str] = []
            if s.sku in with_subs:
                picks = rng.sample(orderable, 3)
                subs = [p.sku for p in picks if p.sku != s.sku][: rng.randint(1, 2)]
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {s.sku[4:]}"
            rows.append(
                (
                    s.sku,
                    name,
                    s.status,
                    s.backorderable,
                    capped.get(s.sku),
                    rng.choices((0, 1, 2, 3), weights=(50, 25, 15, 10))[0],
                    rng.randint(7, 45),
                    subs,
                    self.now - rng.randint(2 * _DAY, 300 * _DAY),
                )
            )
        return [_File("products", f"products_{self.stamp}.csv", rows)]

    def _pick_skus(self, rng: random.Random, k: int) -> list[_Sku]:
        picked: dict[str, _Sku] = {}
        while len(picked) < k:
            s = rng.choices(self.skus, cum_weights=self.sku_cum_weights)[0]
            picked.setdefault(s.sku, s)
        return list(picked.values())

    # -- orders, order lines, shipments ------------------------------------------------

    def orders(self) -> list[_File]:
        rng = self.rng("orders")
        n = 1500 * self.spec.scale
        now = self.now
        rand = rng.random
        placed = sorted(
            now - 10 * _MINUTE - int(rand() * (60 * _DAY - 10 * _MINUTE)) for _ in range(n)
        )
        customers = rng.choices(self.customer_ids, weights=self.customer_weight, k=n)
        # Bulk draws: a call per line into random.choices is the slow part at scale 100.
        n_lines = rng.choices((1, 2, 3, 4), cum_weights=(40, 70, 90, 100), k=n)
        total = sum(n_lines)
        draws = rng.choices(range(len(self.skus)), cum_weights=self.sku_cum_weights, k=total)
        qtys = rng.choices((1, 2, 3, 4, 5), cum_weights=(50, 75, 87, 95, 100), k=total)
        skus = self.skus
        self.orders_: list[_Order] = []
        pos = 0
        for i in range(n):
            oid, cid, at = f"SO-{i + 1:07d}", customers[i], placed[i]
            old = at < now - 5 * _DAY - _HOUR  # old enough to have shipped something
            u = rng.random()
            status = (
                ("completed" if u < 0.12 else "cancelled" if u < 0.17 else "open")
                if old
                else ("cancelled" if u < 0.03 else "open")
            )
            p0, p1 = _PRIORITY_CUTS[self.tier[cid]]
            r = rng.random()
            priority = 0 if r < p0 else 1 if r < p1 else 2
            order = _Order(
                oid, cid, at, status, rng.random() < 0.10, priority, self.currency[cid], at
            )
            ship_at = now - 5 * _DAY + int(rand() * 3 * _DAY) if old else None
            cancel_span = max(_MINUTE, min(3 * _DAY, now - _MINUTE - at))
            k = n_lines[i]
            picked = draws[pos : pos + k]
            while len(set(picked)) < k:  # one line per sku: redraw the repeats
                picked = list(dict.fromkeys(picked))
                picked += rng.choices(range(len(skus)), cum_weights=self.sku_cum_weights)
            for no, (j, qty) in enumerate(zip(picked, qtys[pos : pos + k], strict=True), 1):
                s = skus[j]
                price = s.price_cents
                if rng.random() < 0.1:  # a negotiated discount, still within 5.00-400.00
                    price = max(500, round(price * rng.uniform(0.85, 0.95)))
                line_status, updated = "open", at
                if status == "completed":
                    line_status = "shipped"
                elif status == "cancelled":
                    line_status = "cancelled"
                else:
                    v = rng.random()
                    if ship_at is not None and not order.ship_complete and v < 0.10:
                        line_status = "shipped"
                    elif v > 0.96:
                        line_status = "cancelled"
                if line_status == "shipped":
                    assert ship_at is not None
                    updated = ship_at
                    order.shipped_at = ship_at
                elif line_status == "cancelled":
                    updated = at + _MINUTE + int(rand() * (cancel_span - _MINUTE))
                order.lines.append(_Line(oid, no, s.sku, qty, price, line_status, updated))
            pos += k
            if status == "open" and all(ln.status != "open" for ln in order.lines):
                first = order.lines[0]
                first.status, first.updated_at = "open", at
                if all(ln.status != "shipped" for ln in order.lines):
                    order.shipped_at = None
            if status == "cancelled":  # one cancellation for the whole order
                for ln in order.lines:
                    ln.updated_at = order.lines[0].updated_at
            order.updated_at = max(ln.updated_at for ln in order.lines)
            self.orders_.append(order)

        payments = self.authorizations = self._authorizations()
        rows: list[Row] = [
            (
                o.order_id,
                o.customer_id,
                o.placed_at,
                o.status,
                o.ship_complete,
                o.priority,
                o.currency,
                o.updated_at,
                *payments.get(o.order_id, _NO_PAYMENT),
            )
            for o in self.orders_
        ]
        # Bad row: an unparseable placed_at, on a new order without lines.
        cid = rng.choice(self.customer_ids)
        self.bad_order = f"SO-{n + 1:07d}"
        bad = (
            self.bad_order,
            cid,
            "not-a-date",
            "open",
            False,
            0,
            self.currency[cid],
            now - rng.randint(_HOUR, 2 * _DAY),
            *_NO_PAYMENT,
        )
        rows.insert(rng.randint(n // 2, n - 1), bad)
        return [_File("orders", f"orders_{self.stamp}.jsonl", rows, bad=1)]

    def _authorizations(self) -> dict[str, tuple[Any, ...]]:
        """Stripe authorizations (7 days, for the order's value) on 60 % of the open orders
        placed in the last 8 days: some lapse before their promised date, a few have lapsed.
        A stream of its own, so the other feeds stay as they were before payments."""
        rng = self.rng("payments")
        out: dict[str, tuple[Any, ...]] = {}
        for o in self.orders_:
            if o.status != "open" or o.placed_at < self.now - 8 * _DAY or rng.random() >= 0.6:
                continue
            value = sum(ln.qty * ln.price_cents for ln in o.lines if ln.status != "cancelled")
            ref = f"pi_demo{o.order_id.removeprefix('SO-')}"
            out[o.order_id] = ("stripe", ref, value, o.currency.lower(), o.placed_at + 7 * _DAY)
        return out

    def order_lines(self) -> list[_File]:
        rng = self.rng("order_lines")
        half = len(self.orders_) // 2
        parts = (self.orders_[:half], self.orders_[half:])
        open_orders = [
            [o for o in part if o.status == "open" and not o.ship_complete] for part in parts
        ]
        host_qty0, host_dup = rng.sample(open_orders[0], 2)
        host_neg, host_sku = rng.sample(open_orders[1], 2)

        def extra(o: _Order, sku: str, qty: int, price: int) -> _Line:
            return _Line(o.order_id, len(o.lines) + 1, sku, qty, price, "open", o.placed_at)

        s, s2 = self._pick_skus(rng, 2)
        typo = self._pick_skus(rng, 1)[0].sku.replace("SKU-1", "SKU-I", 1)  # letter I, not one
        dup_of = next(ln for ln in host_dup.lines if ln.status == "open")
        bad: dict[str, list[_Line]] = {
            host_qty0.order_id: [extra(host_qty0, s.sku, 0, s.price_cents)],
            host_dup.order_id: [
                _Line(
                    dup_of.order_id,
                    dup_of.line_no,
                    dup_of.sku,
                    dup_of.qty + 2,
                    dup_of.price_cents,
                    "open",
                    dup_of.updated_at,
                )
            ],
            host_neg.order_id: [extra(host_neg, s2.sku, -2, s2.price_cents)],
            host_sku.order_id: [extra(host_sku, typo, 1, rng.randint(500, 40000))],
        }
        self.bad_lines = bad
        files: list[_File] = []
        for k, part in enumerate(parts, start=1):
            rows: list[Row] = []
            n_bad = 0
            for o in part:
                lines = o.lines + bad.get(o.order_id, [])
                n_bad += len(bad.get(o.order_id, []))
                rows.extend(
                    (
                        ln.order_id,
                        ln.line_no,
                        ln.sku,
                        ln.qty,
                        ln.price_cents,
                        ln.status,
                        ln.updated_at,
                    )
                    for ln in lines
                )
            ext = "parquet" if k == 1 else "csv"
            files.append(
                _File("order_lines", f"order_lines_{self.stamp}_part{k}.{ext}", rows, n_bad)
            )
        return files

    def shipments(self) -> list[_File]:
        by_sku = {s.sku: s for s in self.skus}
        shipped = sorted(
            (o for o in self.orders_ if o.shipped_at is not None),
            key=lambda o: (o.shipped_at, o.order_id),
        )
        rows: list[Row] = []
        for i, o in enumerate(shipped, start=1):
            for ln in o.lines:
                if ln.status == "shipped":
                    loc = by_sku[ln.sku].locations[0]
                    rows.append(
                        (f"SHP-{i:07d}", o.order_id, ln.line_no, ln.sku, ln.qty, loc, o.shipped_at)
                    )
        return [_File("shipments", f"shipments_{self.stamp}.csv", rows)]

    # -- stock -----------------------------------------------------------------------

    def stock(self) -> list[_File]:
        rng = self.rng("stock")
        self.demand: dict[str, int] = dict.fromkeys((s.sku for s in self.skus), 0)
        for o in self.orders_:
            if o.status == "open":
                for ln in o.lines:
                    if ln.status == "open":
                        self.demand[ln.sku] += ln.qty
        as_of = self.now - 2 * _HOUR
        self.on_hand: dict[str, int] = {}
        rows: list[Row] = []
        for s in self.skus:
            need = self.demand[s.sku]
            u = rng.random()
            if u < 0.30 or s.status == "discontinued":
                total = 0
            elif u < 0.70 and need > 0:
                total = int(need * rng.uniform(0.1, 0.8))  # short: this is what backorders are
            else:
                total = need + rng.randint(0, 25)
            self.on_hand[s.sku] = total
            split = rng.randint(0, total) if len(s.locations) == 2 else total
            for loc, qty in zip(s.locations, (split, total - split), strict=False):
                rows.append((loc, s.sku, qty, as_of))
        # An earlier full count, 30 h before the run: nothing ships or arrives between
        # the two counts, so book stock for the recount is the earlier count, except
        # for a few shrinkage cases (about 3 %) that inventory accuracy should catch.
        early_rng = self.rng("stock_early")
        early_at = self.now - 30 * _HOUR
        early = [
            (
                loc,
                sku,
                qty + (early_rng.randint(1, 3) if early_rng.random() < 0.03 else 0),
                early_at,
            )
            for loc, sku, qty, _ in rows
        ]
        self.shrinkage = sum(1 for a, b in zip(early, rows, strict=True) if a[2] != b[2])
        early_stamp = _date_text(datetime.fromtimestamp(early_at, UTC).date())
        # The one unusable file: a cut-off export without the required on_hand column.
        broken = [(loc, sku, self.now - _HOUR) for loc, sku, _, _ in rows[:5]]
        self.broken_stock = "stock_broken_export.csv"
        return [
            _File("stock", f"stock_{early_stamp}.csv", early),
            _File("stock", f"stock_{self.stamp}.csv", rows),
            _File("stock", self.broken_stock, broken, columns=("location_id", "sku", "as_of")),
        ]

    # -- purchase orders, supplier updates --------------------------------------------

    def purchase_orders(self) -> list[_File]:
        rng = self.rng("purchase_orders")
        scale, now, n = self.spec.scale, self.now, len(self.skus)
        wanted: dict[str, list[_PoLine]] = {sup: [] for sup in SUPPLIERS}
        for s in self.skus:
            if s.status != "active":
                continue
            short = self.demand[s.sku] - self.on_hand[s.sku]
            if short > 0 and rng.random() < 0.85:
                k = 3 if s.rank < n // 10 else 2 if s.rank < 3 * n // 10 else 1
                total = max(k, 5 * math.ceil(short * rng.uniform(0.7, 1.6) / 5))
                cuts = sorted(rng.sample(range(1, total), k - 1)) if k > 1 else []
                for a, b in zip([0, *cuts], [*cuts, total], strict=True):
                    wanted[s.supplier].append(_PoLine(s.sku, b - a))
            elif rng.random() < 0.15:
                wanted[s.supplier].append(_PoLine(s.sku, 5 * rng.randint(2, 20)))
        self.pos: list[_Po] = []
        for sup in SUPPLIERS:
            lines = wanted[sup]
            rng.shuffle(lines)
            current: list[_PoLine] = []
            size = rng.randint(1, 4)
            for ln in [*lines, None]:
                full = ln is None or len(current) >= size or any(c.sku == ln.sku for c in current)
                if full and current:
                    self.pos.append(
                        _Po(
                            f"PO-{len(self.pos) + 1:06d}",
                            sup,
                            rng.choice(WAREHOUSES),
                            self.today + timedelta(days=rng.randint(3, 40)),
                            "open",
                            now - rng.randint(_DAY, 25 * _DAY),
                            current,
                        )
                    )
                    current, size = [], rng.randint(1, 4)
                if ln is not None:
                    current.append(ln)
        special = rng.sample(self.pos, 7 * scale)
        for po in special[: 2 * scale]:  # received: arrived days ago, already in stock counts
            po.status = "received"
            po.expected_at = self.today - timedelta(days=rng.randint(2, 12))
            po.updated_at = _ts(po.expected_at) + 10 * _HOUR + rng.randint(0, 6 * _HOUR)
        for po in special[2 * scale : 4 * scale]:
            po.status = "cancelled"
            po.updated_at = now - rng.randint(_HOUR, 5 * _DAY)
        self.overdue = special[4 * scale :]
        self.overdue_ids = {po.po_id for po in self.overdue}
        for po in self.overdue:  # open, ETA passed, no receipt, no new ETA
            po.expected_at = self.today - timedelta(days=rng.randint(1, 10))
            po.updated_at = now - rng.randint(15 * _DAY, 30 * _DAY)
        # Bad row: an ETA nine years out, as an extra line on a normal open PO.
        normal = [p for p in self.pos if p.status == "open" and p.po_id not in self.overdue_ids]
        host = rng.choice(normal)
        same_supplier = [
            s for s in self.skus if s.supplier == host.supplier and s.status == "active"
        ]
        sku = rng.choice(same_supplier).sku
        far = _add_years(self.today, 9)
        self.bad_po = (host.po_id, len(host.lines) + 1)
        rows: list[Row] = []
        for po in self.pos:
            for no, ln in enumerate(po.lines, start=1):
                rows.append(
                    (
                        po.po_id,
                        no,
                        po.supplier,
                        ln.sku,
                        ln.qty,
                        po.location,
                        po.expected_at,
                        po.status,
                        po.updated_at,
                    )
                )
            if po is host:
                rows.append(
                    (
                        po.po_id,
                        len(po.lines) + 1,
                        po.supplier,
                        sku,
                        5 * rng.randint(2, 10),
                        po.location,
                        far,
                        "open",
                        po.updated_at,
                    )
                )
        return [_File("purchase_orders", f"purchase_orders_{self.stamp}.parquet", rows, bad=1)]

    def supplier_updates(self) -> list[_File]:
        rng = self.rng("supplier_updates")
        now = self.now
        eligible = [
            (po, no, ln)
            for po in self.pos
            if po.status == "open" and po.po_id not in self.overdue_ids
            for no, ln in enumerate(po.lines, start=1)
        ]
        picked = sorted(rng.sample(range(len(eligible)), max(4, round(0.15 * len(eligible)))))
        partial = set(rng.sample(picked, max(2, len(picked) // 4)))
        rows: list[Row] = []
        second_done = False
        for i in picked:
            po, no, ln = eligible[i]
            reported = rng.randint(max(po.updated_at + _HOUR, now - 6 * _DAY), now - 3 * _HOUR)
            if i in partial:
                confirmed = max(0, min(ln.qty - 1, math.floor(ln.qty * rng.uniform(0.4, 0.9))))
                rows.append(
                    (
                        po.supplier,
                        po.po_id,
                        no,
                        po.expected_at,
                        confirmed,
                        "partial confirmation",
                        reported,
                    )
                )
                continue
            eta = po.expected_at + timedelta(days=rng.randint(3, 21))
            rows.append(
                (po.supplier, po.po_id, no, eta, None, rng.choice(_DELAY_REASONS), reported)
            )
            if not second_done:  # one line gets a revised, later notice: newest one wins
                second_done = True
                later = reported + (now - _MINUTE - reported) // 2
                eta2 = eta + timedelta(days=rng.randint(3, 10))
                rows.append(
                    (po.supplier, po.po_id, no, eta2, None, "revised: carrier delay", later)
                )
        rows.sort(key=lambda r: (r[6], r[1], r[2]))
        return [_File("supplier_updates", f"supplier_updates_{self.stamp}.jsonl", rows)]

    def build(self) -> list[_File]:
        """Every file of every feed, in dependency order."""
        return [
            *self.customers(),
            *self.products(),
            *self.orders(),
            *self.order_lines(),
            *self.shipments(),
            *self.stock(),
            *self.purchase_orders(),
            *self.supplier_updates(),
        ]


# -- helpers -----------------------------------------------------------------------------


def _exact_shares(
    rng: random.Random, n: int, shares: Sequence[float], values: Sequence[str]
) -> list[str]:
    counts = [round(n * s) for s in shares[:-1]]
    counts.append(n - sum(counts))
    out = [v for v, c in zip(values, counts, strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


def _accumulate(xs: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for x in xs:
        total += x
        yield total


def _ascii(s: str) -> str:
    s = s.replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _ts(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _identity(v: Any) -> Any:
    return v


_quote: Callable[[str], str] = encode_basestring


@functools.lru_cache(maxsize=1 << 16)
def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _date_text(d: date) -> str:
    return d.isoformat()


# Per kind, a value as CSV text: ISO 8601 with Z, true/false, 2 decimals, ;-joined lists.
_TEXT: dict[str, Callable[[Any], str]] = {
    "str": str,
    "int": str,
    "bool": lambda v: "true" if v else "false",
    "ts": _iso,
    "date": _date_text,
    "money": _money,
    "list": ";".join,
}
# Per kind, a value as JSON text; byte-identical to json.dumps(..., ensure_ascii=False).
_JSON: dict[str, Callable[[Any], str]] = {
    "str": _quote,
    "int": str,
    "bool": _TEXT["bool"],
    "ts": lambda v: f'"{_iso(v)}"',
    "date": lambda v: f'"{v.isoformat()}"',
    "money": _money,
    "list": lambda v: "[" + ", ".join(_quote(x) for x in v) + "]",
}


def _or_null(
    convert: Callable[[Any], str], null: str, as_is: Callable[[str], str]
) -> Callable[[Any], str]:
    """Wrap a converter: None becomes ``null``; a str (a planted bad value) goes as_is."""

    def wrapped(v: Any) -> str:
        if v is None:
            return null
        if isinstance(v, str):
            return as_is(v)
        return convert(v)

    return wrapped


_ARROW: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "ts": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "money": pa.decimal128(12, 2),
    "list": pa.list_(pa.string()),
}


_POLARS: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "bool": pl.Boolean(),
    "ts": pl.Int64(),  # microseconds, cast to Datetime below
    "date": pl.Date(),
    "money": pl.Decimal(12, 2),
    "list": pl.List(pl.String()),
}


def _arrow_table(columns: Sequence[str], kinds: Sequence[str], rows: list[Row]) -> pa.Table:
    # Built through polars: pyarrow.array() would import pandas (seconds without a .pyc cache).
    series = []
    for i, (name, kind) in enumerate(zip(columns, kinds, strict=True)):
        values = [row[i] for row in rows]
        if kind == "ts":
            values = [None if v is None else v * 1_000_000 for v in values]
        elif kind == "money":
            values = [None if v is None else Decimal(v).scaleb(-2) for v in values]
        col = pl.Series(name, values, dtype=_POLARS[kind])
        if kind == "ts":
            col = col.cast(pl.Datetime("us", "UTC"))
        series.append(col)
    schema = pa.schema([(c, _ARROW[k]) for c, k in zip(columns, kinds, strict=True)])
    return pl.DataFrame(series).to_arrow().cast(schema)


def _write(path: Path, f: _File) -> None:
    columns = f.columns or COLUMNS[f.feed]
    kinds = [_SCHEMAS[f.feed][c] for c in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(columns)
            # csv itself writes str and int as they are and None as "": convert the rest only.
            conv = [i for i, k in enumerate(kinds) if k not in ("str", "int")]
            text = {i: _or_null(_TEXT[kinds[i]], "", _identity) for i in conv}
            for row in f.rows:
                out = list(row)
                for i in conv:
                    out[i] = text[i](out[i])
                w.writerow(out)
    elif path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            keys = [f"{_quote(c)}: " for c in columns]
            encode = [_or_null(_JSON[k], "null", _quote) for k in kinds]
            fh.writelines(
                "{"
                + ", ".join([k + e(v) for k, e, v in zip(keys, encode, row, strict=True)])
                + "}\n"
                for row in f.rows
            )
    else:
        pq.write_table(
            _arrow_table(columns, kinds, f.rows),
            path,
            compression="zstd",
            compression_level=3,
            use_dictionary=True,
            write_statistics=True,
            version="2.6",
        )


def generate(landing: Path, spec: DemoSpec = DemoSpec()) -> DemoManifest:
    """Write all eight feeds into landing/<feed>/ and return what was written."""
    landing = Path(landing)
    gen = _Gen(spec)
    files = gen.build()
    rows = dict.fromkeys(FEEDS, 0)
    bad_rows = dict.fromkeys(FEEDS, 0)
    written: list[Path] = []
    bad_files: list[Path] = []
    for f in files:
        path = landing / f.feed / f.name
        _write(path, f)
        written.append(path)
        if f.columns is not None:
            bad_files.append(path)
            continue
        rows[f.feed] += len(f.rows)
        bad_rows[f.feed] += f.bad
    auths = sorted((a[1], a[2], a[3], a[4]) for a in gen.authorizations.values())
    return DemoManifest(sorted(written), rows, bad_rows, sorted(bad_files), auths)
