"""The fast ingest paths keep the contract: native Parquet columns, the trim guard, the
merge without a key index (migration 006), a broken Parquet page, and GX on whole batches."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backorders.adapters import feed_readers, feed_rules, gx_runner, store
from backorders.adapters import ingest as ingest_module
from backorders.adapters.ingest import ingest_landing
from tests.integration.conftest import (
    AS_OF,
    IngestFn,
    csv_text,
    database_before,
    quarantined,
    result_for,
    rows,
    write,
    write_base,
)

pytestmark = pytest.mark.integration

TS = "2026-11-12T09:00:00Z"
TS_TYPE = pa.timestamp("us", tz="UTC")
FEED_TABLES = (
    "customers",
    "products",
    "orders",
    "order_lines",
    "stock",
    "purchase_orders",
    "supplier_updates",
    "shipments",
)


def parquet(landing: Path, feed: str, name: str, table: pa.Table, **kw: Any) -> Path:
    path = landing / feed / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kw)
    return path


def _us(text: str) -> int:
    """Microseconds since the epoch of a UTC timestamp text (any year DuckDB knows)."""
    return int(duckdb.sql(f"select epoch_us(timestamptz '{text}')").fetchall()[0][0])


# --- native Parquet columns --------------------------------------------------------------

# (line_no, qty, unit_price, status, updated_at): a good row, then one broken rule each
_LINES: list[tuple[int, int | None, str | None, str | None, str | None]] = [
    (1, 2, "9.99", "open", TS),
    (2, 0, "9.99", "open", TS),
    (3, -1, "-1.50", "open", TS),
    (4, None, "9.99", "open", TS),
    (5, 2, None, "lost", None),
    (6, 2, "9.99", "open", "2026-11-12T09:00:00+02:00"),
]


def test_native_parquet_columns_get_the_reasons_csv_gets(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: the same order lines as CSV text and as Parquet of the contract's own types
    csv_p = write(
        landing,
        "order_lines",
        "a.csv",
        csv_text(
            "order_lines",
            *(
                f"O1,{n},SKU-A,{'' if q is None else q},{p or ''},{s or ''},{ts or ''}"
                for n, q, p, s, ts in _LINES
            ),
        ),
    )
    pq_p = parquet(
        landing,
        "order_lines",
        "b.parquet",
        pa.table(
            {
                "order_id": ["O2"] * len(_LINES),
                "line_no": pa.array([n for n, *_ in _LINES], pa.int32()),
                "sku": ["SKU-A"] * len(_LINES),
                "qty": pa.array([q for _, q, *_ in _LINES], pa.int64()),
                "unit_price": pa.array(
                    [None if p is None else Decimal(p) for _, _, p, *_ in _LINES],
                    pa.decimal128(12, 2),
                ),
                "status": [s for *_, s, _ in _LINES],
                "updated_at": pa.array(
                    [None if ts is None else _us(ts) for *_, ts in _LINES], TS_TYPE
                ),
            }
        ),
    )

    # Act
    results = ingest()

    # Assert: the same rows quarantined for the same reasons; the same typed values loaded
    for p in (csv_p, pq_p):
        r = result_for(results, p)
        assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 2, 4)
    csv_q = [(n, reason) for n, _, reason in quarantined(con, csv_p)]
    pq_q = [(n, reason) for n, _, reason in quarantined(con, pq_p)]
    assert (
        pq_q
        == csv_q
        == [
            (2, 'qty: "0" must be greater than 0'),
            (3, 'qty: "-1" must be greater than 0; unit_price: "-1.50" must be at least 0'),
            (4, "qty: required value is missing"),
            (
                5,
                "unit_price: required value is missing; "
                'status: "lost" is not one of open, cancelled, shipped; '
                "updated_at: required value is missing",
            ),
        ]
    )
    raw = {n: json.loads(r) for n, r, _ in quarantined(con, pq_p)}
    assert raw[3] == {
        "order_id": "O2",
        "line_no": 3,
        "sku": "SKU-A",
        "qty": -1,
        "unit_price": -1.5,
        "status": "open",
        "updated_at": "2026-11-12 09:00:00+00",
    }
    assert rows(
        con,
        "select order_id, line_no, qty, unit_price, updated_at::varchar from order_lines "
        "where order_id in ('O1', 'O2') order by all",
    ) == [
        (o, n, 2, Decimal("9.99"), ts)
        for o in ("O1", "O2")
        for n, ts in ((1, "2026-11-12 09:00:00+00"), (6, "2026-11-12 07:00:00+00"))
    ]


def test_native_timestamp_outside_the_4_digit_years_is_refused_as_its_text_would_be(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: year 10000 fits a Parquet timestamp, not the contract's ISO 8601 text
    path = parquet(
        landing,
        "orders",
        "far.parquet",
        pa.table(
            {
                "order_id": ["O7", "O8"],
                "customer_id": ["C1", "C1"],
                "placed_at": pa.array([_us("10000-01-01 00:00:00+00"), _us(TS)], TS_TYPE),
                "status": ["open", "open"],
                "updated_at": pa.array([_us(TS), _us(TS)], TS_TYPE),
            }
        ),
    )

    # Act
    results = ingest()

    # Assert
    assert (result_for(results, path).rows_loaded, result_for(results, path).rows_quarantined) == (
        1,
        1,
    )
    assert [reason for _, _, reason in quarantined(con, path)] == [
        'placed_at: "10000-01-01T00:00:00.000000Z" is not an ISO 8601 timestamp with a '
        "timezone, e.g. 2026-11-21T14:03:00Z"
    ]


def test_parquet_columns_of_other_types_are_checked_as_text(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: a whole number as a double, a line number as text, a timestamp as text,
    # a decimal wider than decimal(18, 2): none is the contract's own Arrow type
    path = parquet(
        landing,
        "order_lines",
        "odd.parquet",
        pa.table(
            {
                "order_id": ["O1", "O1", "O1"],
                "line_no": ["1", "2", "x3"],
                "sku": ["SKU-A"] * 3,
                "qty": pa.array([2.0, 2.5, 3.0], pa.float64()),
                "unit_price": pa.array(
                    [Decimal("9.9900"), Decimal("1.0000"), Decimal("2.0000")],
                    pa.decimal128(20, 4),
                ),
                "status": ["open"] * 3,
                "updated_at": [TS, "2026-11-12 09:00", TS],
            }
        ),
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 0, 3)
    assert [reason for _, _, reason in quarantined(con, path)] == [
        'qty: "2.0" is not a whole number',
        'qty: "2.5" is not a whole number; updated_at: "2026-11-12 09:00" is not an ISO 8601 '
        "timestamp with a timezone, e.g. 2026-11-21T14:03:00Z",
        'line_no: "x3" is not a whole number; qty: "3.0" is not a whole number',
    ]


def test_an_extra_csv_column_named_like_an_internal_one_is_ignored(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: extra columns row_number and raw, and a bad row to quarantine
    path = write(
        landing,
        "orders",
        "extra.csv",
        "order_id,customer_id,placed_at,status,updated_at,row_number,raw\n"
        f"O7,C1,{TS},open,{TS},x,y\n"
        f"O8,C1,{TS},lost,{TS},x,y\n",
    )

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 1)
    assert r.warnings == ["extra column(s) ignored: row_number, raw"]
    (row,) = quarantined(con, path)
    assert row[0] == 2 and json.loads(row[1])["status"] == "lost"


def test_a_broken_parquet_page_rejects_the_whole_file(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: a valid footer (the schema reads) over a data page overwritten with junk
    n = 50_000
    table = pa.table(
        {
            "order_id": [f"O{i}" for i in range(n)],
            "customer_id": ["C1"] * n,
            "placed_at": pa.array([_us(TS)] * n, TS_TYPE),
            "status": ["open"] * n,
            "updated_at": pa.array([_us(TS)] * n, TS_TYPE),
        }
    )
    path = parquet(landing, "orders", "broken.parquet", table, compression="snappy")
    data = bytearray(path.read_bytes())
    data[100:60_000] = b"\xff" * (60_000 - 100)
    path.write_bytes(bytes(data))
    before = rows(con, "select count(*) from orders")

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("rejected", 0, 0)
    assert r.reason is not None and "Parquet" in r.reason
    assert rows(con, "select count(*) from orders") == before
    assert quarantined(con, path) == []


def test_a_file_that_changes_while_it_is_ingested_is_rejected_whole(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: the exporter rewrites the file between the checks' reads and the commit
    path = write(landing, "orders", "late.csv", csv_text("orders", f"O7,C1,{TS},open,,,,{TS}"))
    real_load = ingest_module._load

    def load_then_rewrite(*args: Any, **kwargs: Any) -> None:
        real_load(*args, **kwargs)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    monkeypatch.setattr(ingest_module, "_load", load_then_rewrite)
    before = rows(con, "select count(*) from orders")

    # Act
    results = ingest()

    # Assert
    r = result_for(results, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("rejected", 0, 0)
    assert r.reason is not None and "changed while it was being ingested" in r.reason
    assert rows(con, "select count(*) from orders") == before


# --- trimming ----------------------------------------------------------------------------

_ZS = "\u0020\u00a0\u1680\u2000\u2005\u200a\u202f\u205f\u3000"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        " ",
        "  ",
        "a",
        "ab",
        " a",
        "a ",
        "\ta\t",
        "a\r",
        "é",
        "aé",
        "éa ",
        "Ωmega",
        *(f"{z}x" for z in _ZS),
        *(f"x{z}" for z in _ZS),
        *(z for z in _ZS),
    ],
)
def test_the_trim_guard_gives_what_trim_gives(value: str | None) -> None:
    con = duckdb.connect()
    got = con.execute(
        f"select {feed_rules._text('v')}, nullif(trim(v), '') from (select $v::varchar as v)",
        {"v": value},
    ).fetchall()
    assert got[0][0] == got[0][1]


@pytest.mark.parametrize(
    "line",
    [
        *("", " ", "  ", "\t", "\r", "\ufeff", "\u3000", "{}", " {}", "\ufeff{}"),
        *("\ufeff\ufeff{}\r", "{}\r\r", "{ }", "é", "x\r"),
    ],
)
def test_the_jsonl_line_guards_give_what_the_trims_give(line: str) -> None:
    con = duckdb.connect()
    unwrapped, blank = con.execute(
        f"select {feed_readers._unwrap('l')} = rtrim(ltrim(l, chr(65279)), chr(13)), "
        "(l2 = '' or ((starts_with(l2, ' ') or l2 >= chr(128)) and trim(l2) = '')) "
        "= (trim(l2) = '') "
        "from (select $v as l), (select rtrim(ltrim($v, chr(65279)), chr(13)) as l2)",
        {"v": line},
    ).fetchall()[0]
    assert unwrapped and blank


# --- merge without a key index (migration 006) ------------------------------------------------


def test_overlapping_files_keep_one_row_per_key_with_the_newest_version(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: three files over the same keys: newer, older, equal versions, new keys
    write(
        landing,
        "order_lines",
        "1.csv",
        csv_text(
            "order_lines",
            "O1,1,SKU-A,1,1.00,open,2026-11-10T00:00:00Z",
            "O1,2,SKU-A,1,1.00,open,2026-11-10T00:00:00Z",
        ),
    )
    ingest()
    write(
        landing,
        "order_lines",
        "2.csv",
        csv_text(
            "order_lines",
            "O1,1,SKU-A,5,1.00,open,2026-11-11T00:00:00Z",  # newer: replaces
            "O1,2,SKU-A,7,1.00,open,2026-11-09T00:00:00Z",  # older: ignored
            "O1,3,SKU-A,1,1.00,open,2026-11-10T00:00:00Z",  # new key
        ),
    )
    ingest()
    parquet(
        landing,
        "order_lines",
        "3.parquet",
        pa.table(
            {
                "order_id": ["O1", "O1"],
                "line_no": pa.array([1, 3], pa.int64()),
                "sku": ["SKU-A", "SKU-A"],
                "qty": pa.array([9, 9], pa.int64()),
                "unit_price": pa.array([Decimal("1.00")] * 2, pa.decimal128(10, 2)),
                "status": ["open", "cancelled"],
                "updated_at": pa.array(
                    [_us("2026-11-11 00:00:00+00"), _us("2026-11-12 00:00:00+00")], TS_TYPE
                ),
            }
        ),
    )

    # Act
    ingest()

    # Assert: the equal version (line 1) kept its row, the newer (line 3) replaced it
    assert rows(
        con,
        "select line_no, qty, status, updated_at::varchar from order_lines "
        "where order_id = 'O1' order by line_no",
    ) == [
        (1, 5, "open", "2026-11-11 00:00:00+00"),
        (2, 1, "open", "2026-11-10 00:00:00+00"),
        (3, 9, "cancelled", "2026-11-12 00:00:00+00"),
    ]
    for table, key in (("order_lines", "order_id, line_no"), ("orders", "order_id")):
        assert rows(
            con,
            f"select count(*) from (select {key} from {table} group by all having count(*) > 1)",
        ) == [(0,)]


def test_merged_rows_keep_their_own_key_and_link_the_keys_of_what_they_reference(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: lines of O1 loaded (a first load: plain insert), keys noted
    write(
        landing,
        "order_lines",
        "1.csv",
        csv_text(
            "order_lines",
            "O1,1,SKU-A,1,1.00,open,2026-11-10T00:00:00Z",
            "O1,2,SKU-B,1,1.00,open,2026-11-10T00:00:00Z",
        ),
    )
    ingest()
    keys_before = dict(rows(con, "select line_no, line_key from order_lines"))
    # then a newer version of line 1 on another sku, a new line, and O1 moved to C2
    write(
        landing,
        "order_lines",
        "2.csv",
        csv_text(
            "order_lines",
            "O1,1,SKU-C,1,1.00,open,2026-11-11T00:00:00Z",
            "O1,3,SKU-A,1,1.00,open,2026-11-11T00:00:00Z",
        ),
    )
    write(
        landing,
        "orders",
        "2.csv",
        csv_text("orders", "O1,C2,2026-11-10T09:00:00Z,open,false,0,USD,2026-11-12T09:00:00Z"),
    )

    # Act
    ingest()

    # Assert: a row keeps its key when it is updated, a new row gets a new one, and
    # every link names the row it references by id (after the update too)
    keys = dict(rows(con, "select line_no, line_key from order_lines"))
    assert keys[1] == keys_before[1] and keys[2] == keys_before[2]
    assert len(set(keys.values())) == 3
    assert rows(
        con,
        "select ol.line_no, ol.sku, p.sku, o.order_id, c.customer_id from order_lines as ol "
        "join products as p on p.sku_key = ol.sku_key join orders as o on o.order_key = "
        "ol.order_key join customers as c on c.customer_key = o.customer_key order by 1",
    ) == [
        (1, "SKU-C", "SKU-C", "O1", "C2"),
        (2, "SKU-B", "SKU-B", "O1", "C2"),
        (3, "SKU-A", "SKU-A", "O1", "C2"),
    ]


def test_a_first_load_into_an_empty_table_stores_what_the_merge_stores(
    tmp_path: Path, settings: Any
) -> None:
    # Arrange: the same PO file into an empty table (plain insert) and into a table
    # that already holds another PO line (merge)
    body = csv_text(
        "purchase_orders",
        f"P1,1,SUP1,SKU-A,10,W1,2026-12-01,open,{TS}",
        "P1,2,SUP1,SKU-B,5,W1,2026-12-01,received,2026-11-21T15:30:00Z",
    )
    stored: dict[str, list[tuple[Any, ...]]] = {}
    for case in ("empty", "merge"):
        landing = tmp_path / case / "landing"
        write_base(landing)
        if case == "merge":
            write(
                landing,
                "purchase_orders",
                "0.csv",
                csv_text("purchase_orders", f"P9,1,SUP1,SKU-A,1,W1,2026-12-01,open,{TS}"),
            )
        write(landing, "purchase_orders", "1.csv", body)
        con = store.connect(tmp_path / case / "db.duckdb")
        try:
            ingest_landing(
                con,
                landing,
                run_id="r",
                as_of=AS_OF,
                settings=settings,
                now=lambda: AS_OF,
                progress=lambda s: None,
            )
            stored[case] = rows(
                con, "select * from purchase_orders where po_id = 'P1' order by line_no"
            )
        finally:
            con.close()

    # Assert
    assert stored["empty"] == stored["merge"]
    assert [(r[1], r[7], r[9] is not None) for r in stored["empty"]] == [
        (1, "open", False),
        (2, "received", True),
    ]


def test_feed_tables_have_no_key_index_but_keep_their_not_null_columns(
    con: duckdb.DuckDBPyConnection,
) -> None:
    constraints = rows(
        con,
        "select table_name, constraint_type from duckdb_constraints() "
        "where list_contains($t, table_name) and constraint_type in ('PRIMARY KEY', 'UNIQUE')",
        {"t": list(FEED_TABLES)},
    )
    assert constraints == []
    with pytest.raises(duckdb.ConstraintException):
        con.execute(
            "insert into order_lines (order_id, line_no, sku, qty, "
            "unit_price, status, updated_at, source_sha256) "
            "values ('O1', 1, null, 1, 1, 'open', now(), 'x')"
        )


def test_migration_006_keeps_every_stored_row(tmp_path: Path) -> None:
    # Arrange: a database at schema version 5 with a row in every feed table
    path = tmp_path / "old.duckdb"
    con = database_before(path, 6)
    ts = AS_OF
    con.execute(
        "insert into customers (customer_id, email, name, tier, "
        "locale, email_opt_in, updated_at, source_sha256) "
        "values ('C1', 'a@b.c', 'A', 'gold', 'en-US', true, $t, 's')",
        {"t": ts},
    )
    con.execute(
        "insert into products (sku, name, status, backorderable, max_backorder_qty, "
        "safety_stock, lead_time_days, substitute_skus, updated_at, source_sha256) "
        "values ('S1', 'P', 'active', true, 3, 1, 7, ['S2'], $t, 's')",
        {"t": ts},
    )
    con.execute(
        "insert into orders (order_id, customer_id, placed_at, status, "
        "ship_complete, priority, currency, updated_at, source_sha256) "
        "values ('O1', 'C1', $t, 'open', false, 0, 'USD', $t, 's')",
        {"t": ts},
    )
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, "
        "unit_price, status, updated_at, source_sha256) "
        "values ('O1', 1, 'S1', 2, 9.99, 'open', $t, 's')",
        {"t": ts},
    )
    con.execute("insert into stock values ('W1', 'S1', 5, $t, 's')", {"t": ts})
    con.execute(
        "insert into purchase_orders values ('P1', 1, 'SUP', 'S1', 4, 'W1', date '2026-12-01', "
        "'received', $t, $t, 's')",
        {"t": ts},
    )
    con.execute(
        "insert into supplier_updates values ('SUP', 'P1', 1, date '2026-12-02', 4, 'late', $t, 's')",
        {"t": ts},
    )
    con.execute("insert into shipments values ('SH1', 'O1', 1, 'S1', 1, 'W1', $t, 's')", {"t": ts})
    before = {t: con.execute(f"select * from {t}").fetchall() for t in FEED_TABLES}
    columns = {t: [c[0] for c in con.execute(f"describe {t}").fetchall()] for t in FEED_TABLES}
    con.close()

    # Act
    migrated = store.connect(path)
    try:
        # Assert: the same rows in the columns they had (later migrations add key columns)
        after = {
            t: migrated.execute(f"select {', '.join(columns[t])} from {t}").fetchall()
            for t in FEED_TABLES
        }
        assert after == before
        assert migrated.execute("select max(version) from schema_migrations").fetchall()[0][0] >= 6
        assert migrated.execute(
            "select count(*) from duckdb_constraints() where constraint_type = 'PRIMARY KEY' "
            "and list_contains($t, table_name)",
            {"t": list(FEED_TABLES)},
        ).fetchall() == [(0,)]
    finally:
        migrated.close()


# --- Great Expectations on whole batches -------------------------------------------------


def test_a_batch_holds_the_columns_its_expectations_read() -> None:
    gx, _ = gx_runner._gx()
    e = gx.expectations
    assert gx_runner._columns(
        [
            e.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_no"]),
            e.ExpectColumnValuesToBeBetween(column="qty", min_value=1),
            e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="a", column_B="qty"),
        ]
    ) == ["order_id", "line_no", "qty", "a"]
    assert gx_runner._columns([e.ExpectTableColumnCountToEqual(value=3)]) is None
    assert (
        gx_runner._columns(
            [
                e.ExpectColumnValuesToNotBeNull(
                    column="x", row_condition='y=="1"', condition_parser="pandas"
                )
            ]
        )
        is None
    )


def test_feed_suites_judge_every_row_of_a_large_batch(con: duckdb.DuckDBPyConnection) -> None:
    # Arrange: 200,000 order lines of one loaded file; the last three break the suite
    # (written straight to the table: the ingest would have quarantined them)
    con.execute(
        "insert into ingested_files values ('sha-1', 'order_lines', 'f', 200000, 0, 'loaded', "
        "null, 'run-v', now())"
    )
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, "
        "unit_price, status, updated_at, source_sha256) "
        "select 'O' || (i // 2), i % 2 + 1, 'SKU-A', "
        "case when i >= 199997 then 0 else 1 end, 9.99, 'open', now(), 'sha-1' "
        "from range(200000) t(i)"
    )
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, "
        "unit_price, status, updated_at, source_sha256) "
        "values ('O5', 1, 'SKU-A', 1, 1.00, 'open', now(), 'sha-1')"
    )

    # Act
    with store.transaction(con):
        (result,) = gx_runner.run_suites(con, ("order_lines",), "run-v")

    # Assert: the duplicate key and the three zero quantities, found among 200,001 rows
    assert (result.suite, result.success, result.rows, result.evaluated) == (
        "order_lines",
        False,
        200_001,
        4,
    )
    found = {f["expectation"]: f["unexpected_count"] for f in result.failed}
    assert found == {
        "expect_compound_columns_to_be_unique": 2,
        "expect_column_values_to_be_between": 3,
    }
    assert rows(con, "select suite, batch, success, evaluated, failed from validation_results") == [
        ("order_lines", "200001 rows", False, 4, 2)
    ]
