"""A run with an as-of in the past sees shipments as they were then."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from backorders.adapters import allocation_store, store
from backorders.settings import load_settings

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_shipment_after_the_as_of_is_neither_demand_nor_stock_yet(tmp_path: Path) -> None:
    con = store.connect(tmp_path / "b.duckdb")
    con.execute(
        "insert into customers (customer_id, email, name, tier, "
        "locale, email_opt_in, updated_at, source_sha256) "
        "values ('C1', 'c@x.test', null, 'gold', 'en-US', true, $t, 't')",
        {"t": T0},
    )
    con.execute(
        "insert into products (sku, name, status, backorderable, max_backorder_qty, "
        "safety_stock, lead_time_days, substitute_skus, updated_at, source_sha256) "
        "values ('S1', null, 'active', true, null, 0, 7, [], $t, 't')",
        {"t": T0},
    )
    con.execute(
        "insert into orders (order_id, customer_id, placed_at, status, "
        "ship_complete, priority, currency, updated_at, source_sha256) "
        "values ('O1', 'C1', $t, 'open', false, 0, 'USD', $t, 't')",
        {"t": T0},
    )
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, "
        "unit_price, status, updated_at, source_sha256) "
        "values ('O1', 1, 'S1', 5, 10, 'open', $t, 't')",
        {"t": T0},
    )
    con.execute("insert into stock values ('WH', 'S1', 5, $t, 't')", {"t": T0})
    # 2 units ship on Nov 20
    con.execute(
        "insert into shipments values ('SH1', 'O1', 1, 'S1', 2, 'WH', $t, 't')",
        {"t": datetime(2026, 11, 20, tzinfo=UTC)},
    )
    s = load_settings()

    def line_after(as_of: datetime) -> tuple[int, int, int]:
        allocation_store.reconcile(con, as_of=as_of, settings=s)
        allocation_store.allocate(con, run_id=as_of.isoformat(), as_of=as_of, settings=s, now=as_of)
        return con.execute(
            "select qty_shipped, qty_allocated, qty_unpromised from line_status where order_id = 'O1'"
        ).fetchone()

    # backfilled to Nov 10: nothing shipped yet; all 5 open, all 5 on hand
    assert line_after(datetime(2026, 11, 10, tzinfo=UTC)) == (0, 5, 0)
    # Nov 23: 2 shipped (out of stock and out of demand), 3 open and covered
    assert line_after(datetime(2026, 11, 23, tzinfo=UTC)) == (2, 3, 0)
