"""Migrations 007 and 009: line_status and allocations become views, and keep every row."""

from __future__ import annotations

from datetime import date
from pathlib import Path

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


def test_migrations_007_and_009_keep_every_line_status_and_allocation_row(
    tmp_path: Path,
) -> None:
    # Arrange: a database at schema version 6 with a run's line_status and two runs'
    # allocations, stored as tables
    path = tmp_path / "old.duckdb"
    con = database_before(path, 7)
    con.executemany(
        "insert into line_status values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        LINE_STATUS_ROWS,
    )
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
        again, new = (allocation_store._run_number(migrated, r) for r in ("r2", "r3"))

        # Assert: one number per run, in the order the runs came
        assert runs == [("r1", 1), ("r2", 2)]
        assert (again, new) == (2, 3)
        assert migrated.execute(
            "select run_id, count(*) from allocations group by all order by 1"
        ).fetchall() == [("r1", 1), ("r2", 2)]
    finally:
        migrated.close()
