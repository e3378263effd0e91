"""Ingest against a real DuckDB file: CONTRACT.md "What bad input gets", file by file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backorders.adapters import audit, store
from backorders.adapters.ingest import ingest_landing
from backorders.settings import Settings
from tests.integration.conftest import (
    AS_OF,
    IngestFn,
    csv_text,
    quarantined,
    result_for,
    rows,
    snapshot,
    write,
    write_base,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
FEED_TABLES = (
    "customers",
    "products",
    "orders",
    "order_lines",
    "stock",
    "stock_counts",
    "purchase_orders",
    "supplier_updates",
    "shipments",
)
TS = "2026-11-12T09:00:00Z"
OL_GOOD = f"O1,1,SKU-A,2,9.99,open,{TS}"


def everything(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every feed table's rows: to prove a rejected file or row changed nothing."""
    return {t: snapshot(con, t) for t in FEED_TABLES}


def new_rows(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows added per table; fails when any stored row changed or vanished."""
    out = {}
    for t in FEED_TABLES:
        lost = [r for r in before[t] if r not in after[t]]
        assert lost == [], f"{t}: stored rows changed or lost: {lost}"
        added = [r for r in after[t] if r not in before[t]]
        if added:
            out[t] = added
    return out


def ingested(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[Any, ...]]:
    """The ingested_files rows of one file: (status, rows_loaded, rows_quarantined, reason)."""
    return rows(
        con,
        "select status, rows_loaded, rows_quarantined, reason from ingested_files where path = $p",
        {"p": str(path)},
    )


def parquet(landing: Path, feed: str, name: str, table: pa.Table) -> Path:
    path = landing / feed / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _ol_json(n: int, **over: Any) -> dict[str, Any]:
    rec = {
        "order_id": "O1",
        "line_no": n,
        "sku": "SKU-A",
        "qty": 2,
        "unit_price": "9.99",
        "status": "open",
        "updated_at": TS,
    }
    return rec | over


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def assert_rejected(
    con: duckdb.DuckDBPyConnection,
    results: list,
    path: Path,
    before: dict[str, list[tuple[Any, ...]]],
    *reason_parts: str,
) -> str:
    """The file is rejected whole: nothing loaded or quarantined, every table unchanged."""
    res = result_for(results, path)
    assert (res.status, res.rows_loaded, res.rows_quarantined) == ("rejected", 0, 0)
    assert res.reason is not None
    for part in reason_parts:
        assert part in res.reason, f"{part!r} not in {res.reason!r}"
    assert ingested(con, path) == [("rejected", 0, 0, res.reason)]
    assert quarantined(con, path) == []
    assert everything(con) == before
    return res.reason


# --- formats -------------------------------------------------------------------------


def test_csv_jsonl_and_parquet_of_one_feed_load_identical_typed_values(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: the same product and order line in each format (only the key differs).
    csv_p = write(
        landing,
        "products",
        "p.csv",
        csv_text(
            "products",
            'SKU-X1,"Widget, large",active,true,,3,10,SKU-A;SKU-B,2026-11-02T10:00:00+02:00',
            "SKU-Y1,Old thing,discontinued,false,5,0,,,2026-11-02T08:00:00Z",
        ),
    )
    product = {
        "name": "Widget, large",
        "status": "active",
        "backorderable": True,
        "max_backorder_qty": None,
        "safety_stock": 3,
        "lead_time_days": 10,
        "substitute_skus": ["SKU-A", "SKU-B"],
    }
    old = {
        "name": "Old thing",
        "status": "discontinued",
        "backorderable": False,
        "max_backorder_qty": 5,
        "safety_stock": 0,
        "lead_time_days": None,
        "substitute_skus": [],
    }
    json_p = write(
        landing,
        "products",
        "p.jsonl",
        jsonl(
            {"sku": "SKU-X2", **product, "updated_at": "2026-11-02T08:00:00Z"},
            {"sku": "SKU-Y2", **old, "updated_at": "2026-11-02T09:00:00+01:00"},
        ),
    )
    ts_type = pa.timestamp("us", tz="UTC")
    pq_p = parquet(
        landing,
        "products",
        "p.parquet",
        pa.table(
            {
                "sku": ["SKU-X3", "SKU-Y3"],
                **{k: [product[k], old[k]] for k in ("name", "status", "backorderable")},
                "max_backorder_qty": pa.array([None, 5], pa.int64()),
                "safety_stock": pa.array([3, 0], pa.int64()),
                "lead_time_days": pa.array([10, None], pa.int64()),
                "substitute_skus": pa.array([["SKU-A", "SKU-B"], []], pa.list_(pa.string())),
                "updated_at": pa.array([utc(2026, 11, 2, 8), utc(2026, 11, 2, 8)], ts_type),
            }
        ),
    )
    ol_csv = write(
        landing,
        "order_lines",
        "l.csv",
        csv_text("order_lines", "O1,1,SKU-A,2,19.90,open,2026-11-12T11:00:00+02:00"),
    )
    ol_json = write(
        landing,
        "order_lines",
        "l.jsonl",
        jsonl(
            {
                "order_id": "O1",
                "line_no": 2,
                "sku": "SKU-A",
                "qty": 2,
                "unit_price": 19.90,
                "status": "open",
                "updated_at": "2026-11-12T09:00:00Z",
            }
        ),
    )
    ol_pq = parquet(
        landing,
        "order_lines",
        "l.parquet",
        pa.table(
            {
                "order_id": ["O1"],
                "line_no": pa.array([3], pa.int64()),
                "sku": ["SKU-A"],
                "qty": pa.array([2], pa.int64()),
                "unit_price": pa.array([Decimal("19.90")], pa.decimal128(10, 2)),
                "status": ["open"],
                "updated_at": pa.array([utc(2026, 11, 12, 9)], ts_type),
            }
        ),
    )

    # Act
    results = ingest()

    # Assert
    for p in (csv_p, json_p, pq_p):
        r = result_for(results, p)
        assert (r.status, r.rows_loaded, r.rows_quarantined, r.warnings) == ("loaded", 2, 0, [])
    for p in (ol_csv, ol_json, ol_pq):
        r = result_for(results, p)
        assert (r.status, r.rows_loaded, r.rows_quarantined, r.warnings) == ("loaded", 1, 0, [])
    cols = (
        "name, status, backorderable, max_backorder_qty, safety_stock, lead_time_days, "
        "substitute_skus, updated_at"
    )
    by_sku = {
        r[0]: r[1:] for r in rows(con, f"select sku, {cols} from products where sku like 'SKU-_%_'")
    }
    expected_x = (*product.values(), utc(2026, 11, 2, 8))
    expected_y = (*old.values(), utc(2026, 11, 2, 8))
    assert by_sku == {
        "SKU-X1": expected_x,
        "SKU-X2": expected_x,
        "SKU-X3": expected_x,
        "SKU-Y1": expected_y,
        "SKU-Y2": expected_y,
        "SKU-Y3": expected_y,
    }
    assert rows(
        con, "select line_no, sku, qty, unit_price, status, updated_at from order_lines"
    ) == [(n, "SKU-A", 2, Decimal("19.90"), "open", utc(2026, 11, 12, 9)) for n in (1, 2, 3)]


def test_csv_with_utf8_bom_and_crlf_line_ends_loads(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn
) -> None:
    # Arrange: as Excel saves "CSV UTF-8": the BOM right before the first column name
    text = csv_text("customers", f"C7,zoe@example.com,Zoë,silver,fr-FR,true,{TS}")
    path = write(landing, "customers", "bom.csv", "\ufeff" + text.replace("\n", "\r\n"))

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined, r.warnings) == ("loaded", 1, 0, [])
    assert rows(con, "select customer_id, name, tier, locale from customers") == [
        ("C7", "Zoë", "silver", "fr-FR")
    ]


def test_extra_column_loads_with_a_warning(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange
    header = "order_id,line_no,gift_wrap,sku,qty,unit_price,status,updated_at\n"
    path = write(landing, "order_lines", "extra.csv", header + f"O1,1,yes,SKU-A,2,9.99,open,{TS}\n")

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 0)
    assert r.warnings == ["extra column(s) ignored: gift_wrap"]
    assert rows(con, "select order_id, line_no, sku, qty from order_lines") == [
        ("O1", 1, "SKU-A", 2)
    ]


# --- whole-file rejects ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_missing_required_column_rejects_the_whole_file(
    fmt: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange: every row lacks qty (the other rows are fine)
    if fmt == "csv":
        text = "order_id,line_no,sku,unit_price,status,updated_at\n" + "".join(
            f"O1,{n},SKU-A,9.99,open,{TS}\n" for n in (1, 2)
        )
    else:
        text = jsonl(
            *(
                {
                    "order_id": "O1",
                    "line_no": n,
                    "sku": "SKU-A",
                    "unit_price": 9.99,
                    "status": "open",
                    "updated_at": TS,
                }
                for n in (1, 2)
            )
        )
    path = write(landing, "order_lines", f"no_qty.{fmt}", text)
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    assert_rejected(con, results, path, before, "missing required column(s) qty")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param(
            "csv_last_line_short",
            csv_text("order_lines", OL_GOOD) + "O1,2,SKU-A,2,9.9",
            id="csv-cut-mid-row",
        ),
        pytest.param(
            "csv_last_value_cut",
            csv_text("order_lines", OL_GOOD) + "O1,2,SKU-A,2,9.99,open,2026-11-12T0",
            id="csv-cut-inside-the-last-value",
        ),
        pytest.param(
            "jsonl_last_line_cut",
            jsonl(_ol_json(1)) + '{"order_id": "O1", "line_no": 2, "sku": "SK',
            id="jsonl-cut-mid-object",
        ),
    ],
)
def test_truncated_file_without_trailing_newline_is_rejected_whole(
    name: str,
    content: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange
    ext = "jsonl" if name.startswith("jsonl") else "csv"
    path = write(landing, "order_lines", f"{name}.{ext}", content)
    before = everything(con)

    # Act
    results = ingest()

    # Assert: even the complete first row is not loaded
    assert_rejected(con, results, path, before, "truncated", "does not end with a newline")


def test_last_line_without_newline_loads_when_it_is_complete(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: a complete last record; only the final newline is missing
    path = write(
        landing,
        "order_lines",
        "no_final_newline.csv",
        csv_text("order_lines", OL_GOOD) + f"O1,2,SKU-B,1,5.00,open,{TS}",
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 2, 0)
    assert rows(con, "select line_no, sku from order_lines order by 1") == [
        (1, "SKU-A"),
        (2, "SKU-B"),
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_latin1_file_is_rejected_whole_as_not_utf8(
    fmt: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange: a good first row, then a customer name in latin-1
    if fmt == "csv":
        text = csv_text(
            "customers",
            f"C5,eve@example.com,Eve,gold,en-US,true,{TS}",
            f"C6,jo@example.com,Jos\xe9 M\xfcller,gold,de-DE,true,{TS}",
        )
    else:
        text = jsonl(
            {"customer_id": "C5", "email": "e@x.com", "tier": "gold", "updated_at": TS},
            {
                "customer_id": "C6",
                "email": "j@x.com",
                "name": "Jos\xe9",
                "tier": "gold",
                "updated_at": TS,
            },
        ).replace("\\u00e9", "\xe9")
    path = write(landing, "customers", f"latin1.{fmt}", text.encode("latin-1"))
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    assert_rejected(con, results, path, before, "not UTF-8", "export the file as UTF-8")


# a 0-byte JSONL file is a file of no record: loaded with 0 rows (test_ingest_empty_files)
@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet"])
def test_zero_byte_file_is_rejected(
    name: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange
    path = write(landing, "orders", name, b"")
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    assert_rejected(con, results, path, before, "empty file (0 bytes)")


def test_header_only_stock_file_is_rejected_as_an_empty_snapshot(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: a stock level is already stored
    write(landing, "stock", "a_first.csv", csv_text("stock", "W1,SKU-A,5,2026-11-22T00:00:00Z"))
    ingest()
    path = write(landing, "stock", "b_header_only.csv", csv_text("stock"))
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    assert_rejected(con, results, path, before, "empty stock snapshot")
    assert rows(con, "select location_id, sku, on_hand from stock") == [("W1", "SKU-A", 5)]


def test_stock_snapshot_far_smaller_than_the_previous_is_rejected_as_cut_off(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: 20 skus counted at W1, then a file with only 2 of them
    skus = [f"S{i:02d}" for i in range(20)]
    write(
        landing,
        "products",
        "twenty.csv",
        csv_text("products", *(f"{s},,active,true,,0,,,{TS}" for s in skus)),
    )
    write(
        landing,
        "stock",
        "a_full.csv",
        csv_text("stock", *(f"W1,{s},{i},2026-11-21T00:00:00Z" for i, s in enumerate(skus))),
    )
    first = ingest()
    assert [(r.status, r.rows_loaded) for r in first if r.feed == "stock"] == [("loaded", 20)]
    path = write(
        landing,
        "stock",
        "b_cut.csv",
        csv_text("stock", "W1,S00,100,2026-11-22T00:00:00Z", "W1,S01,100,2026-11-22T00:00:00Z"),
    )
    before = everything(con)

    # Act
    results = ingest()

    # Assert: the previous levels stay
    assert_rejected(
        con,
        results,
        path,
        before,
        "stock snapshot looks cut off",
        "W1 has 2 rows, the previous snapshot had 20",
    )
    assert rows(con, "select count(*), sum(on_hand) from stock where location_id = 'W1'") == [
        (20, sum(range(20)))
    ]


def test_jsonl_with_a_required_key_missing_from_every_line_is_rejected(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: no line has placed_at
    path = write(
        landing,
        "orders",
        "no_placed_at.jsonl",
        jsonl(
            *(
                {"order_id": f"O{n}", "customer_id": "C1", "status": "open", "updated_at": TS}
                for n in (5, 6)
            )
        ),
    )
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    assert_rejected(con, results, path, before, "missing required column(s) placed_at")


def test_corrupt_parquet_file_is_rejected(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: random-looking bytes with a .parquet suffix
    path = write(landing, "orders", "corrupt.parquet", bytes(range(256)) * 8)
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    assert_rejected(con, results, path, before, "not a readable Parquet file")


# --- row quarantine ----------------------------------------------------------------------


PO_OK = "P1,1,SUP1,SKU-A,10,W1,2026-12-15,open," + TS


@pytest.mark.parametrize(
    ("feed", "good", "bad", "reason"),
    [
        pytest.param(
            "order_lines",
            OL_GOOD,
            f'O1,"1,200",SKU-A,2,9.99,open,{TS}',
            'line_no: "1,200" is not a whole number',
            id="thousands-separator-as-int",
        ),
        pytest.param(
            "order_lines",
            OL_GOOD,
            f"O1,2,SKU-A,2,9.9.9,open,{TS}",
            'unit_price: "9.9.9" is not a decimal number',
            id="bad-decimal",
        ),
        pytest.param(
            "purchase_orders",
            PO_OK,
            f"P1,2,SUP1,SKU-A,10,W1,02/03/2025,open,{TS}",
            'expected_at: "02/03/2025" is not a date YYYY-MM-DD',
            id="us-date",
        ),
        pytest.param(
            "orders",
            f"O5,C1,{TS},open,false,0,USD,{TS}",
            f"O6,C1,{TS},open,yes,0,USD,{TS}",
            'ship_complete: "yes" is not true or false',
            id="yes-as-bool",
        ),
        pytest.param(
            "orders",
            f"O5,C1,{TS},open,false,0,USD,{TS}",
            "O6,C1,2026-11-12T09:00:00,open,false,0,USD," + TS,
            'placed_at: "2026-11-12T09:00:00" is not an ISO 8601 timestamp with a timezone',
            id="timestamp-without-timezone",
        ),
        pytest.param(
            "customers",
            f"C5,eve@example.com,Eve,gold,en-US,true,{TS}",
            "C6,max@example.com,Max,gold,en-US,true,not-a-date",
            'updated_at: "not-a-date" is not an ISO 8601 timestamp with a timezone',
            id="not-a-date",
        ),
        pytest.param(
            "order_lines",
            OL_GOOD,
            f"O1,2,SKU-A,0,9.99,open,{TS}",
            'qty: "0" must be greater than 0',
            id="qty-zero",
        ),
        pytest.param(
            "order_lines",
            OL_GOOD,
            f"O1,2,SKU-A,-3,9.99,open,{TS}",
            'qty: "-3" must be greater than 0',
            id="qty-negative",
        ),
        pytest.param(
            "order_lines",
            OL_GOOD,
            f"O1,2,SKU-A,1,-0.01,open,{TS}",
            'unit_price: "-0.01" must be at least 0',
            id="unit-price-negative",
        ),
        pytest.param(
            "order_lines",
            OL_GOOD,
            f"O1,2,SKU-A,1,9.99,pending,{TS}",
            'status: "pending" is not one of open, cancelled, shipped',
            id="status-not-in-enum",
        ),
        pytest.param(
            "customers",
            f"C5,eve@example.com,Eve,gold,en-US,true,{TS}",
            f"C6,max@example.com,Max,diamond,en-US,true,{TS}",
            'tier: "diamond" is not one of the configured tiers (platinum, gold, silver, standard)',
            id="tier-not-configured",
        ),
        pytest.param(
            "order_lines",
            OL_GOOD,
            f"O1,2,,1,9.99,open,{TS}",
            "sku: required value is missing",
            id="required-value-empty",
        ),
    ],
)
def test_row_breaking_a_type_or_constraint_rule_is_quarantined_and_good_rows_load(
    feed: str,
    good: str,
    bad: str,
    reason: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange: the bad row first, so a good row after it must still load
    path = write(landing, feed, "mixed.csv", csv_text(feed, bad, good))
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 1)
    [(row_number, raw, why)] = quarantined(con, path)
    assert row_number == 1
    assert why.startswith(reason), why
    assert list(json.loads(raw).values()) == [v or None for v in next(csv.reader([bad]))]
    assert ingested(con, path) == [("loaded", 1, 1, None)]
    added = new_rows(before, everything(con))
    assert {t: len(v) for t, v in added.items()} == {feed: 1}
    assert added[feed][0][0] == good.split(",")[0]


def test_several_broken_columns_of_one_row_are_all_named_in_its_reason(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange
    path = write(
        landing,
        "order_lines",
        "multi.csv",
        csv_text("order_lines", "O1,1,SKU-A,yes,-1,bogus,not-a-date"),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 0, 1)
    [(_, _, why)] = quarantined(con, path)
    assert why.split("; ") == [
        'qty: "yes" is not a whole number',
        'unit_price: "-1" must be at least 0',
        'status: "bogus" is not one of open, cancelled, shipped',
        'updated_at: "not-a-date" is not an ISO 8601 timestamp with a timezone, '
        "e.g. 2026-11-21T14:03:00Z",
    ]
    assert rows(con, "select count(*) from order_lines") == [(0,)]


@pytest.fixture
def refs(landing: Path, base: dict[str, Path], ingest: IngestFn) -> None:
    """Base set plus order line O1:1 and PO line P1:1 from SUP1: targets for references."""
    write(landing, "order_lines", "000_ref.csv", csv_text("order_lines", OL_GOOD))
    write(landing, "purchase_orders", "000_ref.csv", csv_text("purchase_orders", PO_OK))
    results = ingest()
    assert [(r.status, r.rows_loaded) for r in results if r.status != "duplicate"] == [
        ("loaded", 1),
        ("loaded", 1),
    ]


@pytest.mark.parametrize(
    ("feed", "good", "bad", "reason"),
    [
        pytest.param(
            "orders",
            f"O5,C1,{TS},open,false,0,USD,{TS}",
            f"O6,C404,{TS},open,false,0,USD,{TS}",
            'customer_id: unknown customer "C404"',
            id="order-of-unknown-customer",
        ),
        pytest.param(
            "order_lines",
            f"O2,1,SKU-B,1,5.00,open,{TS}",
            f"O404,1,SKU-A,1,5.00,open,{TS}",
            'order_id: unknown order "O404"',
            id="line-of-unknown-order",
        ),
        pytest.param(
            "order_lines",
            f"O2,1,SKU-B,1,5.00,open,{TS}",
            f"O2,2,SKU-404,1,5.00,open,{TS}",
            'sku: unknown sku "SKU-404"',
            id="line-of-unknown-sku",
        ),
        pytest.param(
            "stock",
            "W1,SKU-A,4,2026-11-22T00:00:00Z",
            "W1,SKU-404,4,2026-11-22T00:00:00Z",
            'sku: unknown sku "SKU-404"',
            id="stock-of-unknown-sku",
        ),
        pytest.param(
            "purchase_orders",
            f"P2,1,SUP1,SKU-B,5,W1,2026-12-20,open,{TS}",
            f"P2,2,SUP1,SKU-404,5,W1,2026-12-20,open,{TS}",
            'sku: unknown sku "SKU-404"',
            id="po-of-unknown-sku",
        ),
        pytest.param(
            "supplier_updates",
            "SUP1,P1,1,2026-12-20,10,delay,2026-11-20T00:00:00Z",
            "SUP1,P1,9,2026-12-20,10,delay,2026-11-20T00:00:00Z",
            'po_id/line_no: unknown PO line "P1:9"',
            id="supplier-update-of-unknown-po-line",
        ),
        pytest.param(
            "supplier_updates",
            "SUP1,P1,1,2026-12-20,10,delay,2026-11-20T00:00:00Z",
            "SUP2,P1,1,2026-12-21,10,delay,2026-11-21T00:00:00Z",
            'supplier_id: "SUP2" is not the supplier of PO P1 ("SUP1")',
            id="supplier-update-from-another-supplier",
        ),
        pytest.param(
            "shipments",
            "X1,O1,1,SKU-A,1,W1,2026-11-20T00:00:00Z",
            "X2,O1,7,SKU-A,1,W1,2026-11-20T00:00:00Z",
            'order_id/line_no: unknown order line "O1:7"',
            id="shipment-of-unknown-order-line",
        ),
    ],
)
def test_row_with_an_unknown_reference_is_quarantined_and_good_rows_load(
    feed: str,
    good: str,
    bad: str,
    reason: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    refs: None,
    ingest: IngestFn,
) -> None:
    # Arrange
    path = write(landing, feed, "refs.csv", csv_text(feed, good, bad))
    before = everything(con)

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 1)
    [(row_number, raw, why)] = quarantined(con, path)
    assert (row_number, why) == (2, reason)
    assert list(json.loads(raw).values()) == bad.split(",")
    added = new_rows(before, everything(con))
    assert {t: len(v) for t, v in added.items()} == (
        {feed: 1, "stock_counts": 1} if feed == "stock" else {feed: 1}
    )


def test_duplicate_key_inside_one_file_quarantines_every_row_with_that_key(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: O1 (stored already) twice with newer versions, O5 once
    path = write(
        landing,
        "orders",
        "dupes.csv",
        csv_text(
            "orders",
            "O1,C1,2026-11-10T09:00:00Z,cancelled,false,0,USD,2026-11-20T00:00:00Z",
            f"O5,C2,{TS},open,false,0,USD,{TS}",
            "O1,C1,2026-11-10T09:00:00Z,completed,false,0,USD,2026-11-21T00:00:00Z",
        ),
    )
    stored_o1 = rows(con, "select * from orders where order_id = 'O1'")

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 2)
    reason = (
        "duplicate key (order_id=O1) appears 2 times in this file (rows 1, 3): "
        "none of them is loaded"
    )
    assert [(n, why) for n, _, why in quarantined(con, path)] == [(1, reason), (3, reason)]
    assert rows(con, "select * from orders where order_id = 'O1'") == stored_o1
    assert rows(con, "select order_id from orders order by 1") == [("O1",), ("O2",), ("O5",)]


def test_quarantined_row_never_overwrites_the_stored_row_for_its_key(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: a newer version of O1 with a bad status, and a newer valid O2
    stored_o1 = rows(con, "select * from orders where order_id = 'O1'")
    path = write(
        landing,
        "orders",
        "newer.csv",
        csv_text(
            "orders",
            "O1,C1,2026-11-10T09:00:00Z,on-hold,false,0,USD,2026-11-22T00:00:00Z",
            "O2,C2,2026-11-11T09:00:00Z,cancelled,true,5,EUR,2026-11-22T00:00:00Z",
        ),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 1)
    assert [(n, why) for n, _, why in quarantined(con, path)] == [
        (1, 'status: "on-hold" is not one of open, cancelled, completed')
    ]
    assert rows(con, "select * from orders where order_id = 'O1'") == stored_o1
    assert rows(con, "select status from orders where order_id = 'O2'") == [("cancelled",)]


def test_po_with_an_eta_years_away_is_quarantined_but_an_overdue_po_loads(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: an ETA typo (2029), one far in the past, and an overdue ETA (last week)
    path = write(
        landing,
        "purchase_orders",
        "eta.csv",
        csv_text(
            "purchase_orders",
            f"P1,1,SUP1,SKU-A,10,W1,2029-12-15,open,{TS}",
            f"P1,2,SUP1,SKU-A,10,W1,2026-11-16,open,{TS}",
            f"P1,3,SUP1,SKU-A,10,W1,2020-01-01,open,{TS}",
        ),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 2)
    assert [(n, why) for n, _, why in quarantined(con, path)] == [
        (1, "expected_at: 2029-12-15 is more than 730 days from the run date 2026-11-23 (a typo?)"),
        (3, "expected_at: 2020-01-01 is more than 730 days from the run date 2026-11-23 (a typo?)"),
    ]
    assert rows(con, "select po_id, line_no, expected_at, status from purchase_orders") == [
        ("P1", 2, date(2026, 11, 16), "open")
    ]


def test_supplier_update_with_an_eta_years_away_is_quarantined(
    con: duckdb.DuckDBPyConnection, landing: Path, refs: None, ingest: IngestFn
) -> None:
    # Arrange
    path = write(
        landing,
        "supplier_updates",
        "eta.csv",
        csv_text("supplier_updates", "SUP1,P1,1,2030-01-05,,typo,2026-11-20T00:00:00Z"),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 0, 1)
    [(_, _, why)] = quarantined(con, path)
    assert why == (
        "expected_at: 2030-01-05 is more than 730 days from the run date 2026-11-23 (a typo?)"
    )
    assert rows(con, "select count(*) from supplier_updates") == [(0,)]


def test_malformed_csv_rows_are_quarantined_with_their_raw_line_and_the_rest_loads(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: too many columns, too few, an unterminated quote mid-file, then good rows
    too_many = f"O1,2,SKU-A,2,9.99,open,{TS},surplus"
    too_few = "O1,3,SKU-A,2"
    open_quote = f'O1,4,"SKU-A,2,9.99,open,{TS}'
    path = write(
        landing,
        "order_lines",
        "malformed.csv",
        csv_text(
            "order_lines",
            OL_GOOD,
            too_many,
            too_few,
            open_quote,
            f"O2,1,SKU-B,1,5.00,open,{TS}",
            f"O2,2,SKU-B,1,5.00,open,{TS}",
        ),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 3, 3)
    q = quarantined(con, path)
    assert [(n, raw) for n, raw, _ in q] == [(2, too_many), (3, too_few), (4, open_quote)]
    assert q[0][2] == "Expected Number of Columns: 7 Found: 8"
    assert q[1][2] == "Expected Number of Columns: 7 Found: 4"
    assert "quote" in q[2][2]
    assert rows(con, "select order_id, line_no from order_lines order by 1, 2") == [
        ("O1", 1),
        ("O2", 1),
        ("O2", 2),
    ]


def test_csv_with_quoted_commas_and_an_unterminated_quote_on_the_last_line(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn
) -> None:
    # Arrange: a quoted name with a comma and doubled quotes loads; the last record's
    # quote never closes (the file does end with a newline, so it is not cut off)
    path = write(
        landing,
        "customers",
        "quotes.csv",
        csv_text(
            "customers",
            f'C1,a@example.com,"Smith, ""Jo""",gold,en-US,true,{TS}',
            f'C2,b@example.com,"Unclosed,gold,en-US,true,{TS}',
        ),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 1)
    [(n, raw, why)] = quarantined(con, path)
    assert (n, raw.rstrip("\n")) == (2, f'C2,b@example.com,"Unclosed,gold,en-US,true,{TS}')
    assert "quote" in why
    assert rows(con, "select customer_id, name from customers") == [("C1", 'Smith, "Jo"')]


def test_invalid_json_lines_are_quarantined_with_their_raw_text_and_the_rest_loads(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange
    broken = '{"order_id": "O1", "line_no": 2, "sku": SKU-A}'
    path = write(
        landing,
        "order_lines",
        "broken.jsonl",
        jsonl(_ol_json(1)) + broken + "\n" + "[1, 2]\n" + jsonl(_ol_json(3)),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 2, 2)
    assert quarantined(con, path) == [
        (2, broken, "not a JSON object (malformed line)"),
        (3, "[1, 2]", "not a JSON object (malformed line)"),
    ]
    assert rows(con, "select line_no from order_lines order by 1") == [(1,), (3,)]


# --- files seen before, versions --------------------------------------------------------


def test_same_bytes_dropped_twice_are_ingested_once_even_under_another_name(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: one file twice in the same run, and again in a later run
    text = csv_text("order_lines", OL_GOOD, f"O1,2,SKU-B,1,5.00,open,{TS}")
    first = write(landing, "order_lines", "a.csv", text)
    copy = write(landing, "order_lines", "b_copy.csv", text)

    # Act
    results = ingest()
    later = write(landing, "order_lines", "c_again.csv", text)
    results_later = ingest()

    # Assert
    assert result_for(results, first).status == "loaded"
    r = result_for(results, copy)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("duplicate", 0, 0)
    assert r.reason == "already ingested (same SHA-256, status loaded): skipped"
    assert r.sha256 == result_for(results, first).sha256
    assert all(r.status == "duplicate" for r in results_later)
    assert result_for(results_later, later).status == "duplicate"
    assert rows(
        con, "select path, status, rows_loaded from ingested_files where feed = 'order_lines'"
    ) == [(str(first), "loaded", 2)]
    assert rows(con, "select count(*) from order_lines") == [(2,)]
    assert rows(con, "select count(*) from quarantine") == [(0,)]


def test_a_rejected_file_dropped_again_is_not_retried(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange
    text = b"order_id,customer_id\n"
    write(landing, "orders", "a.csv", text)
    ingest()
    again = write(landing, "orders", "b.csv", text)

    # Act
    results = ingest()

    # Assert
    r = result_for(results, again)
    assert (r.status, r.reason) == (
        "duplicate",
        "already ingested (same SHA-256, status rejected): skipped",
    )
    assert rows(con, "select count(*) from ingested_files where feed = 'orders'") == [(2,)]


ORDER_O1 = "O1,C1,2026-11-10T09:00:00Z,{status},false,{prio},USD,{updated_at}"


def _order_file(landing: Path, name: str, status: str, prio: int, updated_at: str) -> Path:
    row = ORDER_O1.format(status=status, prio=prio, updated_at=updated_at)
    return write(landing, "orders", name, csv_text("orders", row))


def _o1(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    [row] = rows(con, "select status, priority, updated_at from orders where order_id = 'O1'")
    return row


def test_later_updated_at_replaces_the_stored_row(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: O1 was stored open, updated 2026-11-10T09:00Z
    path = _order_file(landing, "newer.csv", "cancelled", 9, "2026-11-20T12:00:00+01:00")

    # Act
    results = ingest()

    # Assert
    assert result_for(results, path).status == "loaded"
    assert _o1(con) == ("cancelled", 9, utc(2026, 11, 20, 11))
    assert rows(con, "select source_sha256 from orders where order_id = 'O1'") == [
        (result_for(results, path).sha256,)
    ]


@pytest.mark.parametrize(
    ("label", "updated_at"),
    [
        ("older", "2026-11-01T00:00:00Z"),
        ("equal", "2026-11-20T11:00:00Z"),
        ("equal-other-offset", "2026-11-20T13:00:00+02:00"),
    ],
)
def test_older_or_equal_updated_at_in_a_later_file_never_overwrites(
    label: str,
    updated_at: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange: O1 stored with a newer version than the base
    _order_file(landing, "a_newer.csv", "cancelled", 9, "2026-11-20T11:00:00Z")
    ingest()
    stored = rows(con, "select * from orders where order_id = 'O1'")
    path = _order_file(landing, f"b_{label}.csv", "completed", 1, updated_at)

    # Act
    results = ingest()

    # Assert: the file is accepted, but the stored row is untouched
    r = result_for(results, path)
    assert (r.status, r.rows_quarantined) == ("loaded", 0)
    assert rows(con, "select * from orders where order_id = 'O1'") == stored
    assert _o1(con) == ("cancelled", 9, utc(2026, 11, 20, 11))


def test_stock_count_with_an_older_as_of_never_overwrites_a_newer_one(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange
    write(landing, "stock", "a.csv", csv_text("stock", "W1,SKU-A,7,2026-11-22T00:00:00Z"))
    ingest()
    path = write(
        landing, "stock", "b_late.csv", csv_text("stock", "W1,SKU-A,3,2026-11-20T00:00:00Z")
    )

    # Act
    results = ingest()

    # Assert
    assert result_for(results, path).status == "loaded"
    assert rows(con, "select on_hand, as_of from stock") == [(7, utc(2026, 11, 22))]


def test_po_line_moving_from_open_to_received_records_received_at(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: open, then received, then a later correction (still received)
    row = "P1,1,SUP1,SKU-A,10,W1,2026-12-01,{status},{updated_at}"
    write(
        landing,
        "purchase_orders",
        "a_open.csv",
        csv_text("purchase_orders", row.format(status="open", updated_at=TS)),
    )
    ingest()
    assert rows(con, "select status, received_at from purchase_orders") == [("open", None)]
    write(
        landing,
        "purchase_orders",
        "b_received.csv",
        csv_text(
            "purchase_orders", row.format(status="received", updated_at="2026-11-21T15:30:00Z")
        ),
    )

    # Act
    ingest()
    after_receipt = rows(con, "select status, received_at from purchase_orders")
    write(
        landing,
        "purchase_orders",
        "c_correction.csv",
        csv_text(
            "purchase_orders", row.format(status="received", updated_at="2026-11-22T08:00:00Z")
        ),
    )
    ingest()

    # Assert: the receipt time is the first time it was seen received
    assert after_receipt == [("received", utc(2026, 11, 21, 15, 30))]
    assert rows(con, "select status, updated_at, received_at from purchase_orders") == [
        ("received", utc(2026, 11, 22, 8), utc(2026, 11, 21, 15, 30))
    ]


# --- discovery and audit -----------------------------------------------------------------


def test_unknown_folders_and_extensions_are_ignored_with_a_warning(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn
) -> None:
    # Arrange
    write_base(landing)
    stray_dir_file = write(landing, "invoices", "x.csv", "a,b\n1,2\n")
    stray_ext = write(landing, "orders", "notes.txt", "call the customer\n")
    xlsx = write(landing, "orders", "orders.xlsx", b"PK\x03\x04")
    messages: list[str] = []

    # Act
    results = ingest(progress=messages.append)

    # Assert
    assert [(r.feed, r.status) for r in results] == [
        ("customers", "loaded"),
        ("products", "loaded"),
        ("orders", "loaded"),
    ]
    assert f"{stray_dir_file.parent}: not a feed folder" in "\n".join(messages)
    assert f"{stray_ext}: not .csv, .jsonl or .parquet; ignored" in messages
    assert f"{xlsx}: not .csv, .jsonl or .parquet; ignored" in messages
    assert rows(con, "select count(*) from ingested_files") == [(3,)]


def test_every_ingest_leaves_an_intact_audit_chain_with_one_event_per_recorded_file(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn
) -> None:
    # Arrange: loaded, quarantining, rejected, empty and duplicate files over two runs
    write_base(landing)
    write(landing, "orders", "z_header.csv", csv_text("orders"))
    write(
        landing,
        "order_lines",
        "a.csv",
        csv_text("order_lines", OL_GOOD, "O9,1,SKU-A,1,1,open," + TS),
    )
    write(landing, "order_lines", "b.csv", b"")
    ingest()
    write(
        landing,
        "order_lines",
        "c_dup.csv",
        csv_text("order_lines", OL_GOOD, "O9,1,SKU-A,1,1,open," + TS),
    )

    # Act
    ingest()

    # Assert
    assert audit.verify(con) == []
    events = rows(
        con,
        "select a.event, a.entity, a.entity_id = f.sha256 from audit_log a "
        "join ingested_files f on f.sha256 = a.entity_id order by a.seq",
    )
    assert events == [
        ("file_loaded", "feed:customers", True),
        ("file_loaded", "feed:products", True),
        ("file_loaded", "feed:orders", True),
        ("file_loaded", "feed:orders", True),
        ("file_loaded", "feed:order_lines", True),
        ("file_rejected", "feed:order_lines", True),
    ]
    assert rows(con, "select count(*) from audit_log") == [(6,)]


# --- crash safety ------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from pathlib import Path
    from backorders.adapters import store
    from backorders.adapters.ingest import ingest_landing
    from backorders.settings import load_settings

    as_of = datetime.fromisoformat(sys.argv[3])
    con = store.connect(sys.argv[1])
    ingest_landing(
        con, Path(sys.argv[2]), run_id="killed", as_of=as_of, settings=load_settings(),
        now=lambda: as_of, progress=lambda s: print(s, flush=True),
    )
    print("DONE", flush=True)
    """
)


def _big_landing(landing: Path) -> None:
    """The base set, a 300k-row order_lines file, then more files that come after it."""
    write_base(landing)
    path = landing / "order_lines" / "big.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(csv_text("order_lines"))
        fh.writelines(
            f"O{1 + n % 2},{n},SKU-{'AB'[n % 2]},{1 + n % 5},{n % 100}.50,open,{TS}\n"
            for n in range(1, 300_001)
        )
    write(landing, "order_lines", "small.csv", csv_text("order_lines", "O9,1,SKU-A,1,1,open," + TS))
    write(landing, "stock", "s.csv", csv_text("stock", "W1,SKU-A,5,2026-11-22T00:00:00Z"))
    write(landing, "purchase_orders", "p.csv", csv_text("purchase_orders", PO_OK))


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    out: dict[str, Any] = {t: rows(con, f"select count(*) from {t}")[0][0] for t in FEED_TABLES}
    out["quarantine"] = rows(con, "select count(*) from quarantine")[0][0]
    out["files"] = rows(
        con, "select path, status, rows_loaded, rows_quarantined from ingested_files order by path"
    )
    return out


def test_ingest_killed_mid_run_resumes_without_loading_anything_twice(
    tmp_path: Path, landing: Path, settings: Settings
) -> None:
    # Arrange
    _big_landing(landing)
    db = tmp_path / "killed.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), str(landing), AS_OF.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert child.stdout is not None
    seen = [child.stdout.readline(), child.stdout.readline()]

    # Act: kill it once two files are committed, then run again in-process
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    con = store.connect(db)
    try:
        committed = rows(con, "select path from ingested_files")
        partial_rows = rows(
            con,
            "select count(*) from order_lines "
            "where source_sha256 not in (select sha256 from ingested_files)",
        )
        results = ingest_landing(
            con,
            landing,
            run_id="rerun",
            as_of=AS_OF,
            settings=settings,
            now=lambda: AS_OF,
            progress=lambda s: None,
        )
        resumed = _counts(con)
        chain = audit.verify(con)
    finally:
        con.close()
    clean_con = store.connect(tmp_path / "clean.duckdb")
    try:
        ingest_landing(
            clean_con,
            landing,
            run_id="clean",
            as_of=AS_OF,
            settings=settings,
            now=lambda: AS_OF,
            progress=lambda s: None,
        )
        clean = _counts(clean_con)
    finally:
        clean_con.close()

    # Assert
    assert child.returncode == -signal.SIGKILL
    assert [s.split(":")[0] for s in seen] == [
        "[1/7] customers/000_base_customers.csv",
        "[2/7] products/000_base_products.csv",
    ]
    assert 2 <= len(committed) < 7, "the kill should land before the run finished"
    assert partial_rows == [(0,)]
    assert sum(r.status != "duplicate" for r in results) == 7 - len(committed)
    assert len(resumed["files"]) == 7
    assert [(f[1], f[2]) for f in resumed["files"]] == [(f[1], f[2]) for f in clean["files"]]
    assert resumed == clean
    assert resumed["order_lines"] == 300_000
    assert chain == []
