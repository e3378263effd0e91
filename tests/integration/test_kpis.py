"""The KPI views (migration 020) on small hand-built worlds with known answers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backorders.adapters import store
from backorders.cli import main
from backorders.kpis import NoCommittedRun, compute_kpis, kpi_tables
from tests.integration.conftest import (
    AS_OF,
    IngestFn,
    csv_text,
    database_before,
    insert_line_status,
    write,
)

pytestmark = pytest.mark.integration


def day(d: int, hour: int = 12) -> datetime:
    """A time in November 2026 (UTC)."""
    return datetime(2026, 11, d, hour, tzinfo=UTC)


def add_run(
    con: duckdb.DuckDBPyConnection, run_id: str, as_of: datetime, status: str = "succeeded"
) -> None:
    """A run row, started at its as-of time."""
    con.execute(
        "insert into runs (run_id, as_of, started_at, status) values ($r, $a, $a, $s)",
        {"r": run_id, "a": as_of, "s": status},
    )


def add_line(
    con: duckdb.DuckDBPyConnection,
    order_id: str,
    line_no: int = 1,
    *,
    sku: str = "SKU-A",
    qty: int = 1,
    placed_at: datetime | None = None,
) -> None:
    """An open order line (and its open order, once)."""
    placed = placed_at or day(1)
    con.execute(
        "insert into orders (order_id, customer_id, placed_at, status, ship_complete, priority, "
        "currency, updated_at, source_sha256) select $o, 'C1', $p, 'open', false, 0, 'USD', $p, "
        "'t' where not exists (select 1 from orders where order_id = $o)",
        {"o": order_id, "p": placed},
    )
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, unit_price, status, updated_at, "
        "source_sha256) values ($o, $n, $s, $q, 1, 'open', $p, 't')",
        {"o": order_id, "n": line_no, "s": sku, "q": qty, "p": placed},
    )


def change(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    order_id: str,
    new_status: str,
    promised: date | None = None,
    kind: str = "new",
) -> None:
    """A promise_changes row of a line (line 1 of the order)."""
    con.execute(
        "insert into promise_changes (run_id, order_id, line_no, change, new_status, "
        "new_promised_date) values ($r, $o, 1, $c, $s, $d)",
        {"r": run_id, "o": order_id, "c": kind, "s": new_status, "d": promised},
    )


def from_stock(con: duckdb.DuckDBPyConnection, run_id: str, order_id: str, qty: int) -> None:
    """An allocation of `qty` units from stock to line 1 of the order in the run."""
    con.execute(
        "insert into allocation_runs (run_no, run_id) select n, $r from (select coalesce(max(run_no), 0) + 1 "
        "from allocation_runs) as t(n) where not exists "
        "(select 1 from allocation_runs where run_id = $r)",
        {"r": run_id},
    )
    con.execute(
        "insert into allocation_rows select run_no, $o, 1, 'SKU-A', 'stock', 'W1', $q, null, null "
        "from allocation_runs where run_id = $r",
        {"r": run_id, "o": order_id, "q": qty},
    )


def ship(con: duckdb.DuckDBPyConnection, order_id: str, qty: int, shipped_at: datetime) -> None:
    """A shipment of line 1 of the order."""
    con.execute(
        "insert into shipments values ($i, $o, 1, 'SKU-A', $q, 'W1', $t, 't')",
        {"i": f"S-{order_id}-{shipped_at:%d%H}", "o": order_id, "q": qty, "t": shipped_at},
    )


def one(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, Any]:
    """The single row of a one-row KPI view, as a dict."""
    rel = con.execute(f"select * from {view}")
    names = [d[0] for d in rel.description]
    rows = rel.fetchall()
    assert len(rows) == 1
    return dict(zip(names, rows[0], strict=True))


def test_fill_rate_counts_lines_and_units_filled_from_stock_on_their_first_promise(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange: run r1 first promises four lines, r2 a fifth; r3 started later and failed
    add_run(con, "r1", day(10))
    add_run(con, "r2", day(11))
    add_run(con, "r3", day(12), status="failed")
    for order_id, qty in (("O1", 4), ("O2", 5), ("O3", 3), ("O4", 2), ("O5", 2), ("O6", 9)):
        add_line(con, order_id, qty=qty)
    change(con, "r1", "O1", "allocated", date(2026, 11, 11))
    from_stock(con, "r1", "O1", 4)
    change(con, "r1", "O2", "partially_allocated")
    from_stock(con, "r1", "O2", 2)
    change(con, "r1", "O3", "unpromised")
    change(con, "r1", "O4", "shipped")  # already closed when first seen: not promised
    # O2 filled later from stock: its first promise (2 of 5 units) is what counts
    change(con, "r2", "O2", "allocated", date(2026, 11, 12), kind="now_allocated")
    from_stock(con, "r2", "O2", 5)
    change(con, "r2", "O5", "allocated", date(2026, 11, 12))
    from_stock(con, "r2", "O5", 2)
    change(con, "r3", "O6", "allocated", date(2026, 11, 13))  # after the committed run
    from_stock(con, "r3", "O6", 9)

    # Act
    fill = one(con, "kpi_fill_rate")

    # Assert: lines O1, O2, O3, O5; filled O1 and O5; units 4+5+3+2, from stock 4+2+2
    assert fill["run_id"] == "r2"
    assert (fill["lines"], fill["lines_filled"], fill["line_fill_rate_pct"]) == (4, 2, 50.0)
    assert (fill["units"], fill["units_filled"], fill["unit_fill_rate_pct"]) == (14, 8, 57.1)


def test_fill_rate_units_are_the_open_units_when_the_line_was_first_promised(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange: 2 of 6 units shipped before the first promise, which takes the other 4 from stock
    add_run(con, "r1", day(10))
    add_line(con, "O1", qty=6)
    ship(con, "O1", 2, day(9))
    change(con, "r1", "O1", "allocated", date(2026, 11, 11))
    from_stock(con, "r1", "O1", 4)

    # Act
    fill = one(con, "kpi_fill_rate")

    # Assert
    assert (fill["units"], fill["units_filled"], fill["unit_fill_rate_pct"]) == (4, 4, 100.0)


def test_backorder_aging_puts_each_open_backordered_line_in_its_bucket_at_the_boundaries(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange: orders placed 0, 7, 8, 14, 15, 30, 31, 60 and 61 days before the as-of date
    add_run(con, "r1", AS_OF)
    ages = (0, 7, 8, 14, 15, 30, 31, 60, 61)
    status_rows = []
    for i, age in enumerate(ages):
        order_id = f"O{age}"
        add_line(con, order_id, qty=i + 1, placed_at=AS_OF - timedelta(days=age, hours=3))
        unpromised = age in (7, 61)
        status_rows.append(
            {
                "order_id": order_id,
                "line_no": 1,
                "qty_ordered": i + 1,
                "qty_shipped": 0,
                "qty_allocated": 0,
                "qty_promised": 0 if unpromised else i + 1,
                "qty_unpromised": i + 1 if unpromised else 0,
                "promised_date": None if unpromised else date(2026, 12, 1),
                "status": "unpromised" if unpromised else "promised",
                "priority_rank": 1,
                "run_id": "r1",
            }
        )
    # neither an allocated line nor a shipped one is a backorder
    for order_id, status in (("OA", "allocated"), ("OS", "shipped")):
        add_line(con, order_id, qty=5, placed_at=AS_OF - timedelta(days=3))
        status_rows.append(
            {**status_rows[0], "order_id": order_id, "status": status, "qty_ordered": 5,
             "qty_allocated": 5 if status == "allocated" else 0, "qty_promised": 0,
             "qty_shipped": 5 if status == "shipped" else 0, "promised_date": None}
        )  # fmt: skip
    insert_line_status(con, status_rows)

    # Act
    aging = con.execute(
        "select bucket, lines, backordered_units, unpromised_lines from kpi_backorder_aging"
    ).fetchall()

    # Assert: units are i + 1 for the i-th age
    assert aging == [
        ("0-7", 2, 1 + 2, 1),
        ("8-14", 2, 3 + 4, 0),
        ("15-30", 2, 5 + 6, 0),
        ("31-60", 2, 7 + 8, 0),
        (">60", 1, 9, 1),
    ]


def test_promise_accuracy_measures_shipped_lines_against_their_first_promised_date(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange
    add_run(con, "r1", day(15))
    add_run(con, "r2", day(16))
    add_run(con, "r3", day(25))
    for order_id in ("A", "B", "C", "F", "P", "U"):
        add_line(con, order_id, qty=2)
    change(con, "r1", "A", "promised", date(2026, 11, 20))
    ship(con, "A", 2, day(20, 18))  # on its date
    change(con, "r1", "B", "promised", date(2026, 11, 21))
    ship(con, "B", 2, day(21, 23))  # late in the evening, still on the day
    change(con, "r1", "C", "promised", date(2026, 11, 19))
    change(con, "r2", "C", "promised", date(2026, 11, 23), kind="later")
    ship(con, "C", 2, day(22))  # before its new date, 3 days after the first
    change(con, "r1", "F", "unpromised")
    change(con, "r2", "F", "promised", date(2026, 11, 18), kind="status")
    ship(con, "F", 1, day(23))
    ship(con, "F", 1, day(24))  # the line completes on the 24th: 6 days late
    change(con, "r1", "P", "promised", date(2026, 11, 17))
    ship(con, "P", 1, day(24))  # partly shipped: not measured yet
    ship(con, "U", 2, day(20))  # shipped without a promise: not measured

    # Act
    acc = one(con, "kpi_promise_accuracy")

    # Assert: A and B on time; C 3 and F 6 days late
    assert (acc["shipped_lines"], acc["on_time_lines"], acc["on_time_pct"]) == (4, 2, 50.0)
    assert (acc["late_lines"], acc["avg_days_late"], acc["max_days_late"]) == (2, 4.5, 6)


def test_promise_accuracy_of_three_lines_with_two_on_time_is_66_7_percent(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange
    add_run(con, "r1", day(10))
    add_run(con, "r2", day(20))
    for order_id, promised, shipped in (("A", 12, 12), ("B", 14, 13), ("C", 15, 17)):
        add_line(con, order_id)
        change(con, "r1", order_id, "promised", date(2026, 11, promised))
        ship(con, order_id, 1, day(shipped))

    # Act
    acc = one(con, "kpi_promise_accuracy")

    # Assert
    assert (acc["shipped_lines"], acc["on_time_pct"], acc["avg_days_late"]) == (3, 66.7, 2.0)


def test_supplier_with_late_receipts_gets_a_lower_on_time_rate_and_a_longer_lead_time(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: both suppliers' lines first seen on Nov 1; the PO feed later overwrites
    # SLOW's first ETA (Nov 10) with Nov 15, then SLOW delivers on Nov 16 and Nov 13
    row = "{po},{no},{sup},SKU-A,10,W1,{eta},{status},{ts}"
    first = [
        row.format(po="PF", no=1, sup="FAST", eta="2026-11-10", status="open", ts="2026-11-01T08:00:00Z"),
        row.format(po="PF", no=2, sup="FAST", eta="2026-11-12", status="open", ts="2026-11-01T08:00:00Z"),
        row.format(po="PS", no=1, sup="SLOW", eta="2026-11-10", status="open", ts="2026-11-01T08:00:00Z"),
        row.format(po="PS", no=2, sup="SLOW", eta="2026-11-10", status="open", ts="2026-11-01T08:00:00Z"),
        row.format(po="PS", no=3, sup="SLOW", eta="2026-11-20", status="open", ts="2026-11-01T08:00:00Z"),
    ]  # fmt: skip
    write(landing, "purchase_orders", "a.csv", csv_text("purchase_orders", *first))
    ingest()
    moved = row.format(po="PS", no=1, sup="SLOW", eta="2026-11-15", status="open", ts="2026-11-08T08:00:00Z")  # fmt: skip
    write(landing, "purchase_orders", "b.csv", csv_text("purchase_orders", moved))
    ingest()
    received = [
        row.format(po="PF", no=1, sup="FAST", eta="2026-11-10", status="received", ts="2026-11-09T10:00:00Z"),
        row.format(po="PF", no=2, sup="FAST", eta="2026-11-12", status="received", ts="2026-11-12T10:00:00Z"),
        row.format(po="PS", no=1, sup="SLOW", eta="2026-11-15", status="received", ts="2026-11-16T10:00:00Z"),
        row.format(po="PS", no=2, sup="SLOW", eta="2026-11-10", status="received", ts="2026-11-13T10:00:00Z"),
    ]  # fmt: skip
    write(landing, "purchase_orders", "c.csv", csv_text("purchase_orders", *received))
    ingest()
    add_run(con, "r1", AS_OF)

    # Act
    perf = {r["supplier_id"]: r for r in kpi_tables(con)["supplier_performance"]}

    # Assert: FAST on time, lead times 8 and 11 days; SLOW 6 and 3 days late against the
    # first ETA, lead times 15 and 12 days, and its open line (ETA Nov 20) is overdue
    fast, slow = perf["FAST"], perf["SLOW"]
    assert (fast["received_lines"], fast["on_time_pct"], fast["avg_days_late"]) == (2, 100.0, None)
    assert (slow["received_lines"], slow["on_time_pct"], slow["avg_days_late"]) == (2, 0.0, 4.5)
    assert (fast["avg_lead_time_days"], slow["avg_lead_time_days"]) == (9.5, 13.5)
    assert (fast["open_lines"], slow["open_lines"], slow["overdue_lines"]) == (0, 1, 1)


def test_po_line_first_seen_received_has_no_measured_lead_time(
    con: duckdb.DuckDBPyConnection, landing: Path, base: dict[str, Path], ingest: IngestFn
) -> None:
    # Arrange: the pipeline never saw it open, so it cannot know when it was ordered
    line = "P1,1,SUP1,SKU-A,10,W1,2026-11-10,received,2026-11-10T09:00:00Z"
    write(landing, "purchase_orders", "a.csv", csv_text("purchase_orders", line))
    ingest()
    add_run(con, "r1", AS_OF)

    # Act
    (perf,) = kpi_tables(con)["supplier_performance"]

    # Assert
    assert (perf["received_lines"], perf["on_time_pct"]) == (1, 100.0)
    assert (perf["avg_lead_time_days"], perf["lead_time_lines"]) == (None, 0)


def test_migration_020_gives_stored_po_lines_their_current_eta_as_their_first(
    tmp_path: Path,
) -> None:
    # Arrange: a database made before migration 020, with a stored PO line
    path = tmp_path / "old.duckdb"
    old = database_before(path, 20)
    old.execute(
        "insert into purchase_orders values ('P1', 1, 'SUP', 'S1', 4, 'W1', date '2026-12-01', "
        "'open', timestamptz '2026-11-20 08:00:00+00', null, 's')"
    )
    old.close()

    # Act
    with store.connect(path) as con:
        first = con.execute("select first_expected_at, first_seen_at from purchase_orders")

        # Assert
        assert first.fetchall() == [(date(2026, 12, 1), datetime(2026, 11, 20, 8, tzinfo=UTC))]


def test_top_backordered_skus_rank_skus_by_backordered_units_with_their_open_demand(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange: SKU-A 5 promised units and 3 allocated; SKU-B 7 unpromised; SKU-C allocated only
    add_run(con, "r1", AS_OF)
    lines = (
        ("O1", "SKU-A", "promised", 5),
        ("O2", "SKU-A", "allocated", 3),
        ("O3", "SKU-B", "unpromised", 7),
        ("O4", "SKU-C", "allocated", 4),
        ("O5", "SKU-B", "shipped", 9),
    )
    status_rows = []
    for order_id, sku, status, qty in lines:
        add_line(con, order_id, sku=sku, qty=qty)
        status_rows.append(
            {"order_id": order_id, "line_no": 1, "qty_ordered": qty,
             "qty_shipped": qty if status == "shipped" else 0,
             "qty_allocated": qty if status == "allocated" else 0,
             "qty_promised": qty if status == "promised" else 0,
             "qty_unpromised": qty if status == "unpromised" else 0,
             "promised_date": None, "status": status, "priority_rank": 1, "run_id": "r1"}
        )  # fmt: skip
    insert_line_status(con, status_rows)

    # Act
    top = con.execute(
        "select rank, sku, backordered_lines, backordered_units, unpromised_units, "
        "open_demand_units from kpi_top_backordered_skus"
    ).fetchall()

    # Assert
    assert top == [(1, "SKU-B", 1, 7, 7, 7), (2, "SKU-A", 1, 5, 0, 8)]


def test_kpis_without_a_committed_run_say_so_and_the_command_exits_1(
    con: duckdb.DuckDBPyConnection, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: one run failed, one is still running
    add_run(con, "r1", day(10), status="failed")
    add_run(con, "r2", day(11), status="running")
    with pytest.raises(NoCommittedRun):
        compute_kpis(con)
    con.close()

    # Act
    code = main(["kpis", "--db", str(db_path)])

    # Assert
    assert code == 1
    assert "no committed run yet" in capsys.readouterr().err


def test_kpis_command_prints_every_kpi_as_json_and_as_tables(
    con: duckdb.DuckDBPyConnection, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: a run that succeeded with failed sends counts as committed
    add_run(con, "r1", day(10), status="succeeded_with_failures")
    add_line(con, "O1", qty=4)
    change(con, "r1", "O1", "allocated", date(2026, 11, 11))
    from_stock(con, "r1", "O1", 3)
    con.close()

    # Act
    json_code = main(["kpis", "--db", str(db_path), "--format", "json"])
    kpis = json.loads(capsys.readouterr().out)
    table_code = main(["kpis", "--db", str(db_path)])
    text = capsys.readouterr().out

    # Assert
    assert json_code == table_code == 0
    assert kpis["run_id"] == "r1" and kpis["as_of"] == "2026-11-10T12:00:00+00:00"
    assert kpis["fill_rate"] == [
        {"lines": 1, "lines_filled": 1, "line_fill_rate_pct": 100.0, "units": 4,
         "units_filled": 3, "unit_fill_rate_pct": 75.0}
    ]  # fmt: skip
    assert [b["bucket"] for b in kpis["backorder_aging"]] == [
        "0-7",
        "8-14",
        "15-30",
        "31-60",
        ">60",
    ]
    assert kpis["promise_accuracy"][0]["shipped_lines"] == 0
    assert "KPIs as of run r1" in text and "unit_fill_rate_pct" in text
    lines = text.splitlines()
    header = lines.index("fill rate") + 1
    assert lines[header].split() == list(kpis["fill_rate"][0])
    assert lines[header + 2].split() == ["1", "1", "100", "4", "3", "75"]


def test_kpis_name_the_uncommitted_run_whose_allocation_aging_and_top_skus_show(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Arrange: r1 committed; r2 allocated (line_status is its) and was then blocked
    add_run(con, "r1", day(10))
    add_run(con, "r2", day(11), status="blocked")
    add_line(con, "O1", qty=2)
    row = {"order_id": "O1", "line_no": 1, "qty_ordered": 2, "qty_shipped": 0,
           "qty_allocated": 0, "qty_promised": 0, "qty_unpromised": 2, "promised_date": None,
           "status": "unpromised", "priority_rank": 1}  # fmt: skip
    insert_line_status(con, [{**row, "run_id": "r2"}])

    # Act
    kpis = compute_kpis(con)

    # Assert
    assert kpis["run_id"] == "r1"
    assert kpis["line_status_run"] == {"run_id": "r2", "status": "blocked"}
    insert_line_status(con, [{**row, "run_id": "r1"}])
    assert "line_status_run" not in compute_kpis(con)
