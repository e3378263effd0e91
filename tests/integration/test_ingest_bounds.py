"""Implausible values are quarantined with the column, the value and the rule (settings bounds)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backorders import pipeline
from backorders.adapters import allocation_store
from backorders.settings import Settings
from tests.integration.conftest import (
    AS_OF,
    IngestFn,
    csv_text,
    quarantined,
    result_for,
    rows,
    write,
)

pytestmark = pytest.mark.integration
TS = "2026-11-12T09:00:00Z"


def test_order_placed_far_in_the_future_or_the_past_is_quarantined_not_ranked(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: 9999-12-31 (a placeholder that would never be served), 1900-01-01 (one
    # that would rank first), and an order placed normally
    path = write(
        landing,
        "orders",
        "o.csv",
        csv_text(
            "orders",
            f"O7,C1,9999-12-31T00:00:00Z,open,false,0,USD,{TS}",
            f"O8,C1,1900-01-01T00:00:00Z,open,false,0,USD,{TS}",
            f"O9,C1,{TS},open,false,0,USD,{TS}",
        ),
    )

    # Act
    r = result_for(ingest(), path)

    # Assert
    assert (r.rows_loaded, r.rows_quarantined) == (1, 2)
    reasons = {n: reason for n, _, reason in quarantined(con, path)}
    assert reasons == {
        1: "placed_at: 9999-12-31T00:00:00Z is later than the run's as-of 2026-11-23T06:00:00Z "
        "plus 1 day(s) (rule max_future_days): a typo or a wrong clock?",
        2: "placed_at: 1900-01-01T00:00:00Z is before 2000-01-01 (rule earliest_date): "
        "a typo or a placeholder date?",
    }
    assert rows(con, "select order_id from orders where order_id in ('O7', 'O8', 'O9')") == [
        ("O9",)
    ]


def test_every_timestamp_column_of_every_feed_is_bounded_also_in_parquet(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: native Parquet timestamps (no text on the way) on a stock file and a
    # customers file with an updated_at in the future
    stock = landing / "stock" / "s.parquet"
    stock.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "location_id": ["W1", "W1"],
                "sku": ["SKU-A", "SKU-B"],
                "on_hand": [5, 6],
                "as_of": pa.array(
                    [datetime(2026, 11, 22, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        ),
        stock,
    )
    cust = write(
        landing,
        "customers",
        "c.csv",
        csv_text("customers", "C9,c9@example.com,,gold,,,2027-06-01T00:00:00Z"),
    )

    # Act
    results = ingest()

    # Assert
    assert [(n, reason.split(" is ")[0]) for n, _, reason in quarantined(con, stock)] == [
        (2, "as_of: 2031-01-01T00:00:00Z")
    ]
    assert "rule max_future_days" in quarantined(con, cust)[0][2]
    assert result_for(results, stock).rows_loaded == 1


BIG = "1000000000000"  # 10^12


@pytest.mark.parametrize(
    ("feed", "row", "reason"),
    [
        (
            "order_lines",
            f"O1,1,SKU-A,{BIG},9.99,open,{TS}",
            f"qty: {BIG} is more than 1000000 (rule max_quantity): a typo?",
        ),
        (
            "order_lines",
            f"O1,1,SKU-A,1,{BIG},open,{TS}",
            f"unit_price: {BIG}.00 is more than 1000000 (rule max_unit_price): a typo?",
        ),
        (
            "stock",
            f"W1,SKU-A,{BIG},2026-11-22T00:00:00Z",
            f"on_hand: {BIG} is more than 100000000 (rule max_on_hand): a typo?",
        ),
        (
            "products",
            f"SKU-Z,Z,active,true,{BIG},0,7,,2026-11-01T00:00:00Z",
            f"max_backorder_qty: {BIG} is more than 1000000 (rule max_quantity): a typo?",
        ),
        (
            "purchase_orders",
            f"P1,1,SUP1,SKU-A,{BIG},W1,2026-12-01,open,{TS}",
            f"qty: {BIG} is more than 1000000 (rule max_quantity): a typo?",
        ),
    ],
)
def test_quantity_of_ten_to_the_twelve_is_quarantined_with_its_rule(
    feed: str,
    row: str,
    reason: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange: next to a good row, so the file itself loads
    good = {
        "order_lines": "O1,2,SKU-A,2,9.99,open," + TS,
        "stock": "W1,SKU-B,3,2026-11-22T00:00:00Z",
        "products": "SKU-Y,Y,active,true,,0,7,,2026-11-01T00:00:00Z",
        "purchase_orders": f"P1,2,SUP1,SKU-A,5,W1,2026-12-01,open,{TS}",
    }[feed]
    path = write(landing, feed, "q.csv", csv_text(feed, row, good))

    # Act
    r = result_for(ingest(), path)

    # Assert
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 1)
    assert [q[2] for q in quarantined(con, path)] == [reason]


def test_quantity_bound_is_the_configured_setting(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    settings: Settings,
    ingest: IngestFn,
) -> None:
    # Arrange: a lower bound from settings
    small = settings.model_copy(update={"max_quantity": 10})
    path = write(
        landing,
        "order_lines",
        "ol.csv",
        csv_text("order_lines", "O1,1,SKU-A,10,1,open," + TS, "O1,2,SKU-A,11,1,open," + TS),
    )

    # Act
    r = result_for(ingest(settings=small), path)

    # Assert
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert quarantined(con, path)[0][2] == "qty: 11 is more than 10 (rule max_quantity): a typo?"


def _line_status(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple]:
    allocation_store.reconcile(con, as_of=AS_OF, settings=settings)
    allocation_store.allocate(con, run_id="alloc", as_of=AS_OF, settings=settings, now=AS_OF)
    return rows(
        con,
        "select order_id, line_no, qty_ordered, qty_shipped, status from line_status "
        "where order_id = 'O1'",
    )


def test_over_shipment_is_quarantined_per_row_and_the_line_stays_in_line_status(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    settings: Settings,
    ingest: IngestFn,
) -> None:
    # Arrange: a line of 4 units; 3 ship in one file, then 50 and 1 in the next
    write(landing, "order_lines", "ol.csv", csv_text("order_lines", "O1,1,SKU-A,4,9.99,open," + TS))
    write(landing, "stock", "s.csv", csv_text("stock", "W1,SKU-A,100,2026-11-12T00:00:00Z"))
    write(
        landing,
        "shipments",
        "a.csv",
        csv_text("shipments", "SH1,O1,1,SKU-A,3,W1,2026-11-13T00:00:00Z"),
    )
    ingest()
    path = write(
        landing,
        "shipments",
        "b.csv",
        csv_text(
            "shipments",
            "SH2,O1,1,SKU-A,50,W1,2026-11-14T00:00:00Z",
            "SH3,O1,1,SKU-A,1,W1,2026-11-15T00:00:00Z",
        ),
    )

    # Act
    r = result_for(ingest(), path)

    # Assert: the 50 is quarantined with the line's figures, and so is the later
    # shipment of the line in the file (the line has already overflowed there)
    assert (r.rows_loaded, r.rows_quarantined) == (0, 2)
    reasons = [reason for _, _, reason in quarantined(con, path)]
    assert reasons[0] == (
        "qty: 50 would bring order line O1:1 to 53 units shipped, more than the 4 it ordered "
        "(3 stored before this file; rule: a line ships at most what it ordered): an "
        "over-shipment, or the line's quantity is out of date"
    )
    assert reasons[1].startswith("qty: 1 would bring order line O1:1 to 54 units shipped")
    assert rows(con, "select shipment_id from shipments") == [("SH1",)]
    assert _line_status(con, settings) == [("O1", 1, 4, 3, "allocated")]


def test_over_shipment_never_stops_the_cycle_at_the_inventory_equations(
    tmp_path: Path, settings: Settings
) -> None:
    # Arrange: a line of 4 units, 5 counted, a shipment of 50 for it
    landing = tmp_path / "landing"
    for feed, body in {
        "customers": "C1,ann@example.com,Ann,gold,en-US,true,2026-11-01T00:00:00Z",
        "products": "SKU-A,Widget,active,true,,0,7,,2026-11-01T00:00:00Z",
        "orders": "O1,C1,2026-11-10T09:00:00Z,open,false,0,USD,2026-11-10T09:00:00Z",
        "order_lines": "O1,1,SKU-A,4,9.99,open," + TS,
        "stock": "W1,SKU-A,5,2026-11-12T00:00:00Z",
        "shipments": "SH1,O1,1,SKU-A,50,W1,2026-11-13T00:00:00Z",
    }.items():
        write(landing, feed, f"{feed}.csv", csv_text(feed, body))
    s = settings.model_copy(update={"landing": landing, "db": tmp_path / "b.duckdb"})

    # Act: ingest, then reconcile (book stock and its equations suite)
    ingested = pipeline.ingest_stage(s, "run-1", AS_OF, lambda _: None)
    pos = pipeline.reconcile_stage(s, "run-1", AS_OF, lambda _: None)

    # Assert
    assert ingested["rows_quarantined"] == 1
    assert pos["usable_stock_units"] == 5
