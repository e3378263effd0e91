"""Migrations 007, 009 and 010: line_status and allocations become views over compact
tables keyed by integers, and keep every row."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import allocation_store, store
from tests.integration.conftest import database_before

pytestmark = pytest.mark.integration


LINE_STATUS_ROWS = [
    ("O1", 1, "C1", "S1", 3, 0, 3, 0, 0, date(2026, 11, 25), "allocated", 1, "rank 1 ...", "r2"),
    ("O1", 2, "C1", "S2", 5, 1, 0, 2, 2, None, "partially_allocated", 4, None, "r2"),
    ("O2", 1, "C2", "S1", 1, 1, 0, 0, 0, None, "shipped", None, "shipped (line ...)", "r2"),
]
ALLOCATION_ROWS = [
    ("r1", "O1", 1, "S1", "stock", "W1", 3, date(2026, 11, 25)),
    ("r2", "O1", 1, "S1", "stock", "W1", 3, date(2026, 11, 25)),
    ("r2", "O1", 2, "S2", "po", "P1:1", 2, date(2026, 12, 9)),
]


def _order_lines(con: duckdb.DuckDBPyConnection) -> None:
    """The customers, orders and order lines of LINE_STATUS_ROWS, as feeds stored them."""
    t = "timestamptz '2026-11-20 00:00:00+00'"
    con.execute(
        "insert into customers values "
        f"('C1', 'a@shop.test', 'A', 'gold', 'en-US', true, {t}, 's'), "
        f"('C2', 'b@shop.test', 'B', 'standard', 'en-US', true, {t}, 's')"
    )
    con.execute(
        "insert into products values "
        f"('S1', null, 'active', true, null, 0, 7, [], {t}, 's'), "
        f"('S2', null, 'active', true, null, 0, 7, [], {t}, 's')"
    )
    con.execute(
        "insert into orders values "
        f"('O1', 'C1', {t}, 'open', false, 0, 'USD', {t}, 's'), "
        f"('O2', 'C2', {t}, 'closed', false, 0, 'USD', {t}, 's')"
    )
    con.execute(
        "insert into order_lines values "
        f"('O1', 1, 'S1', 3, 1.00, 'open', {t}, 's'), "
        f"('O1', 2, 'S2', 5, 1.00, 'open', {t}, 's'), "
        f"('O2', 1, 'S1', 1, 1.00, 'open', {t}, 's')"
    )


def _before_007(
    path: Path, line_status: list[tuple[object, ...]], *, with_order_lines: bool = True
) -> duckdb.DuckDBPyConnection:
    """A database at schema version 6 (line_status a table) holding these line_status rows."""
    con = database_before(path, 7)
    if with_order_lines:
        _order_lines(con)
    con.executemany(
        "insert into line_status values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", line_status
    )
    return con


def test_migrations_007_and_009_keep_every_line_status_and_allocation_row(
    tmp_path: Path,
) -> None:
    # Arrange: a database at schema version 6 with a run's line_status and two runs'
    # allocations, stored as tables
    path = tmp_path / "old.duckdb"
    con = _before_007(path, LINE_STATUS_ROWS)
    con.executemany("insert into allocations values (?, ?, ?, ?, ?, ?, ?, ?)", ALLOCATION_ROWS)
    con.close()

    # Act
    migrated = store.connect(path)
    try:
        # Assert: the views show the same rows, column for column
        got = migrated.execute("select * from line_status order by order_id, line_no").fetchall()
        assert got == LINE_STATUS_ROWS
        assert migrated.execute("select * from allocations order by all").fetchall() == sorted(
            ALLOCATION_ROWS
        )
        kinds = {
            name: table_type
            for name, table_type in migrated.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_name in ('line_status', 'allocations')"
            ).fetchall()
        }
        assert kinds == {"line_status": "VIEW", "allocations": "VIEW"}
        assert [c[0] for c in migrated.execute("describe line_status").fetchall()] == [
            "order_id", "line_no", "customer_id", "sku", "qty_ordered", "qty_shipped",
            "qty_allocated", "qty_promised", "qty_unpromised", "promised_date", "status",
            "priority_rank", "reason", "run_id",
        ]  # fmt: skip
    finally:
        migrated.close()


def test_migrated_runs_keep_their_numbers_and_a_new_run_gets_the_next(tmp_path: Path) -> None:
    # Arrange: a migrated database holding two runs' allocations
    path = tmp_path / "old.duckdb"
    con = database_before(path, 7)
    con.executemany("insert into allocations values (?, ?, ?, ?, ?, ?, ?, ?)", ALLOCATION_ROWS)
    con.close()
    migrated = store.connect(path)
    try:
        # Act: the numbers behind the run ids, and those a rerun and a new run get
        runs = migrated.execute("select run_id, run_no from allocation_runs order by 2").fetchall()
        # (the number, and whether the run id had allocated before: redone in full)
        again, new = (allocation_store._run_number(migrated, r) for r in ("r2", "r3"))

        # Assert: one number per run, in the order the runs came
        assert runs == [("r1", 1), ("r2", 2)]
        assert (again, new) == ((2, True), (3, False))
        assert migrated.execute(
            "select run_id, count(*) from allocations group by all order by 1"
        ).fetchall() == [("r1", 1), ("r2", 2)]
    finally:
        migrated.close()


def test_migration_010_keys_every_entity_and_links_every_row(tmp_path: Path) -> None:
    # Arrange: a database from before migration 007 with feed rows and a run's line
    # status (migrations 007 to 010 then run in turn)
    path = tmp_path / "old.duckdb"
    _before_007(path, LINE_STATUS_ROWS).close()

    # Act
    migrated = store.connect(path)
    try:
        # Assert: one distinct key per row of each entity, and every link filled
        for table, key in (
            ("customers", "customer_key"),
            ("products", "sku_key"),
            ("orders", "order_key"),
            ("order_lines", "line_key"),
        ):
            n, distinct, nulls = migrated.execute(
                f"select count(*), count(distinct {key}), count(*) - count({key}) from {table}"
            ).fetchone()
            assert (distinct, nulls) == (n, 0), table
        unlinked = migrated.execute(
            "select count(*) from order_lines as ol join orders as o using (order_id) "
            "join products as p using (sku) join customers as c on c.customer_id = o.customer_id "
            "where ol.order_key is distinct from o.order_key or ol.sku_key is distinct from "
            "p.sku_key or o.customer_key is distinct from c.customer_key"
        ).fetchone()
        assert unlinked == (0,)
        # the stored line results are keyed by the line; the view reads the ids back
        assert [c[0] for c in migrated.execute("describe line_results").fetchall()][:2] == [
            "line_key",
            "qty_ordered",
        ]
        got = migrated.execute("select * from line_status order by order_id, line_no").fetchall()
        assert got == LINE_STATUS_ROWS
        # a row inserted by hand gets its key (and its links) before the next allocation
        migrated.execute(
            "insert into orders (order_id, customer_id, placed_at, status, ship_complete, "
            "priority, currency, updated_at, source_sha256) values ('O3', 'C1', now(), 'open', "
            "false, 0, 'USD', now(), 's')"
        )
        allocation_store.link_keys(migrated)
        keys = migrated.execute("select order_key, customer_key from orders order by 1").fetchall()
        assert len({k for k, _ in keys}) == 3 and None not in {c for _, c in keys}
    finally:
        migrated.close()


def test_migration_010_stops_rather_than_drop_a_line_result_without_its_order_line(
    tmp_path: Path,
) -> None:
    # Arrange: a stored line_status row whose order line is not in order_lines
    path = tmp_path / "old.duckdb"
    _before_007(path, LINE_STATUS_ROWS[:1], with_order_lines=False).close()

    # Act / Assert: the migration fails, names the problem, and leaves schema 9 in place
    with pytest.raises(store.StoreError, match="1 line_results rows have no order line"):
        store.connect(path).close()
    con = duckdb.connect(str(path))
    try:
        assert con.execute("select max(version) from schema_migrations").fetchone() == (9,)
        assert con.execute("select count(*) from line_results").fetchone() == (1,)
    finally:
        con.close()
