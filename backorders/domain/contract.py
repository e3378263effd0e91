"""The feed contract (CONTRACT.md v1) as data: feeds, columns, types, keys and row rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColType = Literal["str", "int", "decimal", "bool", "timestamp", "date", "list"]


@dataclass(frozen=True)
class Column:
    """One contract column: its type, whether it is required, and an optional rule."""

    name: str
    type: ColType
    required: bool = False
    default: str | None = None  # SQL literal used when the value is empty
    choices: tuple[str, ...] = ()  # allowed values for an enumerated str column
    min_value: int | None = None  # inclusive lower bound for int/decimal
    min_exclusive: bool = False  # True: value must be > min_value
    # the setting that caps an int column (a larger value is quarantined as implausible);
    # every timestamp column is bounded by the run's as-of and earliest_date instead
    max_setting: str | None = None
    # a timestamp that lies ahead by nature (an expiry): bounded by the run's as-of plus
    # this many days (a setting) instead of max_future_days
    horizon_setting: str | None = None


@dataclass(frozen=True)
class Feed:
    """One feed of the landing zone: its columns, key and version column."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    version: str  # later value replaces earlier for the same key

    @property
    def column_names(self) -> tuple[str, ...]:
        """Contract column names in contract order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required columns."""
        return tuple(c.name for c in self.columns if c.required)


C = Column
# The payment providers an order's authorization may name (docs/payments.md).
PAYMENT_PROVIDERS: tuple[str, ...] = ("stripe",)
# The quantity of an order line, a PO line or a shipment: one rule for the three.
QTY = C("qty", "int", required=True, min_value=0, min_exclusive=True, max_setting="max_quantity")

FEEDS: dict[str, Feed] = {
    f.name: f
    for f in (
        Feed(
            "customers",
            (
                C("customer_id", "str", required=True),
                C("email", "str", required=True),
                C("name", "str"),
                C("tier", "str", required=True),  # choices come from settings.tiers
                C("locale", "str", default="'en-US'"),
                C("email_opt_in", "bool", default="true"),
                C("updated_at", "timestamp", required=True),
            ),
            key=("customer_id",),
            version="updated_at",
        ),
        Feed(
            "products",
            (
                C("sku", "str", required=True),
                C("name", "str"),
                C("status", "str", required=True, choices=("active", "discontinued")),
                C("backorderable", "bool", required=True),
                C("max_backorder_qty", "int", min_value=0, max_setting="max_quantity"),
                C("safety_stock", "int", default="0", min_value=0, max_setting="max_on_hand"),
                C("lead_time_days", "int", min_value=0, max_setting="max_eta_days"),
                C("substitute_skus", "list"),
                C("updated_at", "timestamp", required=True),
                # optional (migration 030): the supplier's pack; orders are rounded up to it
                C(
                    "pack_size",
                    "int",
                    min_value=0,
                    min_exclusive=True,
                    max_setting="max_quantity",
                ),
            ),
            key=("sku",),
            version="updated_at",
        ),
        Feed(
            "orders",
            (
                C("order_id", "str", required=True),
                C("customer_id", "str", required=True),
                C("placed_at", "timestamp", required=True),
                C("status", "str", required=True, choices=("open", "cancelled", "completed")),
                C("ship_complete", "bool", default="false"),
                C("priority", "int", default="0"),
                C("currency", "str", default="'USD'"),
                C("updated_at", "timestamp", required=True),
                # an optional payment authorization (docs/payments.md); the rules that
                # tie them together are in sql/ingest/rules_orders.sql
                C("payment_provider", "str", choices=PAYMENT_PROVIDERS),
                C("payment_ref", "str"),
                C("payment_amount", "int", min_value=0, min_exclusive=True),
                C("payment_currency", "str"),
                C("payment_expires_at", "timestamp", horizon_setting="max_eta_days"),
            ),
            key=("order_id",),
            version="updated_at",
        ),
        Feed(
            "order_lines",
            (
                C("order_id", "str", required=True),
                C("line_no", "int", required=True),
                C("sku", "str", required=True),
                QTY,
                C(
                    "unit_price",
                    "decimal",
                    required=True,
                    min_value=0,
                    max_setting="max_unit_price",
                ),
                C("status", "str", required=True, choices=("open", "cancelled", "shipped")),
                C("updated_at", "timestamp", required=True),
            ),
            key=("order_id", "line_no"),
            version="updated_at",
        ),
        Feed(
            "stock",
            (
                C("location_id", "str", required=True),
                C("sku", "str", required=True),
                C("on_hand", "int", required=True, min_value=0, max_setting="max_on_hand"),
                C("as_of", "timestamp", required=True),
            ),
            key=("location_id", "sku"),
            version="as_of",
        ),
        Feed(
            "purchase_orders",
            (
                C("po_id", "str", required=True),
                C("line_no", "int", required=True),
                C("supplier_id", "str", required=True),
                C("sku", "str", required=True),
                QTY,
                C("location_id", "str", required=True),
                C("expected_at", "date", required=True),
                C("status", "str", required=True, choices=("open", "received", "cancelled")),
                C("updated_at", "timestamp", required=True),
            ),
            key=("po_id", "line_no"),
            version="updated_at",
        ),
        Feed(
            "supplier_updates",
            (
                C("supplier_id", "str", required=True),
                C("po_id", "str", required=True),
                C("line_no", "int", required=True),
                C("expected_at", "date", required=True),
                C("qty_confirmed", "int", min_value=0, max_setting="max_quantity"),
                C("reason", "str"),
                C("reported_at", "timestamp", required=True),
            ),
            key=("po_id", "line_no", "reported_at"),
            version="reported_at",
        ),
        Feed(
            "shipments",
            (
                C("shipment_id", "str", required=True),
                C("order_id", "str", required=True),
                C("line_no", "int", required=True),
                C("sku", "str", required=True),
                QTY,
                C("location_id", "str", required=True),
                C("shipped_at", "timestamp", required=True),
            ),
            key=("shipment_id", "order_id", "line_no"),
            version="shipped_at",
        ),
    )
}

# Load order: a feed's references must be loaded before it in the same run.
FEED_ORDER: tuple[str, ...] = (
    "customers",
    "products",
    "orders",
    "order_lines",
    "stock",
    "purchase_orders",
    "supplier_updates",
    "shipments",
)
FORMATS: tuple[str, ...] = (".csv", ".jsonl", ".parquet")
