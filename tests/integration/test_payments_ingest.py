"""The orders feed's optional payment columns: they load, old files still load, bad values
are quarantined with a reason a person can act on."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.integration.conftest import IngestFn, csv_text, quarantined, result_for, rows, write

pytestmark = pytest.mark.integration
HEADER = (
    "order_id,customer_id,placed_at,status,ship_complete,priority,currency,updated_at,"
    "payment_provider,payment_ref,payment_amount,payment_currency,payment_expires_at"
)
T = "2026-11-20T09:00:00Z"


def base_customers(landing: Path) -> None:
    write(
        landing,
        "customers",
        "c.csv",
        csv_text("customers", "C1,ann@example.com,Ann,gold,en-US,true,2026-11-01T00:00:00Z"),
    )


def test_payment_columns_load_and_orders_without_them_still_load(
    landing: Path, con: duckdb.DuckDBPyConnection, ingest: IngestFn
) -> None:
    base_customers(landing)
    write(landing, "orders", "old.csv", csv_text("orders", f"O0,C1,{T},open,false,0,USD,{T}"))
    write(
        landing,
        "orders",
        "new.csv",
        HEADER + "\n"
        f"O1,C1,{T},open,false,0,USD,{T},stripe,pi_3MtwBwLkdIwHu7ix,3550,usd,2026-11-27T09:00:00Z\n"
        f"O2,C1,{T},open,false,0,EUR,{T},,,,,\n",
    )
    ingest()
    assert rows(
        con,
        "select order_id, payment_provider, payment_ref, payment_amount, "
        "payment_currency, payment_expires_at is not null from orders order by 1",
    ) == [
        ("O0", None, None, None, None, False),
        ("O1", "stripe", "pi_3MtwBwLkdIwHu7ix", 3550, "usd", True),
        ("O2", None, None, None, None, False),
    ]


@pytest.mark.parametrize(
    ("payment", "reason"),
    [
        (
            "stripe,pi_1,-100,usd,2026-11-27T09:00:00Z",
            'payment_amount: "-100" must be greater than 0',
        ),
        (
            "stripe,pi_1,12.50,usd,2026-11-27T09:00:00Z",
            'payment_amount: "12.50" is not a whole number',
        ),
        (
            "paypal,pi_1,100,usd,2026-11-27T09:00:00Z",
            'payment_provider: "paypal" is not one of stripe',
        ),
        ("stripe,ch_123,100,usd,2026-11-27T09:00:00Z", "is not a Stripe PaymentIntent id"),
        ("stripe,,100,usd,2026-11-27T09:00:00Z", "payment_ref: required with payment_provider"),
        ("stripe,pi_1,,usd,2026-11-27T09:00:00Z", "payment_amount: required with payment_provider"),
        (",pi_1,100,usd,2026-11-27T09:00:00Z", "payment_provider: required with payment_ref"),
        ("stripe,pi_1,100,eur,2026-11-27T09:00:00Z", "differs from the order's currency"),
        ("stripe,pi_1,100,dollars,2026-11-27T09:00:00Z", "is not a three-letter ISO currency code"),
        (
            "stripe,pi_1,100,usd,2031-01-01T00:00:00Z",
            "day(s) after the run's as-of (rule max_eta_days)",
        ),
        ("stripe,pi_1,100,usd,tomorrow", 'payment_expires_at: "tomorrow" is not an ISO 8601'),
    ],
)
def test_bad_payment_values_are_quarantined_with_the_rule(
    landing: Path, con: duckdb.DuckDBPyConnection, ingest: IngestFn, payment: str, reason: str
) -> None:
    base_customers(landing)
    path = write(
        landing,
        "orders",
        "bad.csv",
        HEADER + "\n"
        f"O1,C1,{T},open,false,0,USD,{T},{payment}\n"
        f"O2,C1,{T},open,false,0,USD,{T},stripe,pi_ok,100,usd,2026-11-27T09:00:00Z\n",
    )
    r = result_for(ingest(), path)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    [(row_number, _raw, why)] = quarantined(con, path)
    assert row_number == 1 and reason in why
    assert rows(con, "select order_id from orders") == [("O2",)]
