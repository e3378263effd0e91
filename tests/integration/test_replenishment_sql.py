"""Replenishment advice on small worlds loaded through the real feeds, ingest and allocation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backorders.adapters import allocation_store, replenish
from backorders.settings import Settings
from tests.integration.conftest import AS_OF, HEADERS, IngestFn, write

pytestmark = pytest.mark.integration

PRODUCTS = HEADERS["products"] + ",pack_size"


def feed(landing: Path, feed_name: str, name: str, header: str, *rows: str) -> None:
    """A CSV file of the feed with this header and rows."""
    write(landing, feed_name, name, header + "\n" + "".join(r + "\n" for r in rows))


def base(landing: Path, *products: str) -> None:
    """A customer and the given products rows (sku,...,pack_size)."""
    feed(
        landing,
        "customers",
        "c.csv",
        HEADERS["customers"],
        "C1,a@x.test,A,gold,en-US,true,2026-09-01T00:00:00Z",
    )
    feed(landing, "products", "p.csv", PRODUCTS, *products)


def orders(landing: Path, *lines: tuple[str, str, str, int, str]) -> None:
    """One order per (order_id, placed day, sku, qty, line status), placed at noon UTC."""
    feed(
        landing, "orders", "o.csv", HEADERS["orders"],
        *(f"{o},C1,{d}T12:00:00Z,open,false,0,USD,{d}T12:00:00Z" for o, d, _, _, _ in lines),
    )  # fmt: skip
    feed(
        landing, "order_lines", "ol.csv", HEADERS["order_lines"],
        *(f"{o},1,{s},{q},10.00,{st},{d}T12:00:00Z" for o, d, s, q, st in lines),
    )  # fmt: skip


def advise(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[tuple[str, str], Any]:
    """Reconcile, allocate and replenish as of AS_OF; the advice rows by (sku, location)."""
    allocation_store.reconcile(con, as_of=AS_OF, settings=settings)
    allocation_store.allocate(con, run_id="r1", as_of=AS_OF, settings=settings, now=AS_OF)
    replenish.replenish(con, run_id="r1", as_of=AS_OF, settings=settings)
    return {(r["sku"], r["location_id"]): r for r in replenish.advice_rows(con, "r1")}


def test_backordered_refused_and_cancelled_demand_counts_where_it_would_ship(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn, settings: Settings
) -> None:
    base(
        landing,
        "SKU-A,Widget,active,true,,0,7,,2026-09-01T00:00:00Z,",
        "SKU-B,Gadget,active,true,2,0,7,,2026-09-01T00:00:00Z,",
    )
    orders(
        landing,
        ("O1", "2026-11-10", "SKU-A", 4, "open"),  # backordered: no stock, promised from the PO
        ("O2", "2026-11-11", "SKU-A", 3, "cancelled"),
        ("O3", "2026-11-12", "SKU-A", 2, "shipped"),
        ("O4", "2026-11-13", "SKU-B", 5, "open"),  # 3 beyond the backorder limit of 2: refused
    )
    feed(
        landing,
        "stock",
        "s.csv",
        HEADERS["stock"],
        "WH-1,SKU-A,0,2026-11-22T00:00:00Z",
        "WH-1,SKU-B,0,2026-11-22T00:00:00Z",
    )
    feed(
        landing, "purchase_orders", "po.csv", HEADERS["purchase_orders"],
        "P1,1,SUP-1,SKU-A,6,WH-2,2026-12-01,open,2026-11-20T00:00:00Z",
    )  # fmt: skip
    feed(
        landing,
        "shipments",
        "sh.csv",
        HEADERS["shipments"],
        "SH1,O3,1,SKU-A,2,WH-1,2026-11-15T00:00:00Z",
    )
    ingest()

    advice = advise(con, settings)

    # the shipped line counts where it shipped from; the others at the sku's home, WH-2,
    # where its supply arrives; the out-of-stock and cancelled units count as demand too
    assert advice["SKU-A", "WH-1"]["demand_units"] == 2
    assert advice["SKU-A", "WH-2"]["demand_units"] == 4 + 3
    # refused units are demand (what customers wanted) but not a backorder the shop owes
    assert advice["SKU-B", "WH-1"]["demand_units"] == 5
    assert advice["SKU-B", "WH-1"]["backordered"] == 0
    wh2 = advice["SKU-A", "WH-2"]
    assert (wh2["on_hand"], wh2["on_order"], wh2["committed"], wh2["backordered"]) == (0, 6, 0, 4)
    assert wh2["position"] == 2
    # 12.75 days of order history (Nov 10 noon to the run, Nov 23 6:00): the window shrinks
    # to its 13 days
    assert wh2["window_days"] == 13
    assert wh2["daily_demand"] == pytest.approx(7 / 13, abs=1e-3)


def _late_supplier_world(landing: Path, ingest: IngestFn) -> None:
    """SKU-R from a punctual supplier, SKU-U from a late, erratic one; the same demand."""
    base(
        landing,
        "SKU-R,Reliable,active,true,,0,10,,2026-09-01T00:00:00Z,",
        "SKU-U,Unreliable,active,true,,0,10,,2026-09-01T00:00:00Z,",
        "SKU-S,Shared,active,true,,0,10,,2026-09-01T00:00:00Z,",
    )
    pos = HEADERS["purchase_orders"]
    opened = [
        f"P{s}{i},1,{sup},SKU-{s},10,WH,2026-10-08,open,2026-10-01T00:00:00Z"
        for s, sup in (("R", "SUP-GOOD"), ("U", "SUP-LATE"))
        for i in (1, 2, 3)
    ]
    opened += ["PS1,1,SUP-GOOD,SKU-S,5,WH,2026-12-20,open,2026-10-01T00:00:00Z"]
    opened += ["PS2,1,SUP-LATE,SKU-S,5,WH,2026-12-01,open,2026-10-01T00:00:00Z"]
    feed(landing, "purchase_orders", "po1.csv", pos, *opened)
    ingest(as_of=datetime(2026, 10, 1, 6, tzinfo=UTC))
    # received: the punctual one after 7, 6, 7 days (on time), the late one after 11, 19, 29
    received = [
        f"P{s}{i},1,{sup},SKU-{s},10,WH,2026-10-08,received,2026-10-{day:02d}T00:00:00Z"
        for s, sup, days in (("R", "SUP-GOOD", (8, 7, 8)), ("U", "SUP-LATE", (12, 20, 30)))
        for i, day in zip((1, 2, 3), days, strict=True)
    ]
    feed(landing, "purchase_orders", "po2.csv", pos, *received)
    ingest(as_of=datetime(2026, 11, 1, 6, tzinfo=UTC))
    days = ("2026-11-16", "2026-11-18", "2026-11-20", "2026-11-22")
    orders(
        landing,
        *((f"O{s}{i}", d, f"SKU-{s}", q, "open") for s in "RUS" for i, (d, q) in enumerate(zip(days, (1, 4, 2, 5), strict=True))),
    )  # fmt: skip
    feed(
        landing,
        "stock",
        "s.csv",
        HEADERS["stock"],
        *(f"WH,SKU-{s},0,2026-11-22T00:00:00Z" for s in "RUS"),
    )
    ingest()


def test_unreliable_supplier_gets_a_longer_lead_time_and_a_larger_safety_stock(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn, settings: Settings
) -> None:
    _late_supplier_world(landing, ingest)

    advice = advise(con, settings)

    good, late = advice["SKU-R", "WH"], advice["SKU-U", "WH"]
    assert good["daily_demand"] == late["daily_demand"]
    assert (good["lead_time_source"], late["lead_time_source"]) == ("supplier_sku", "supplier_sku")
    assert good["lead_time_days"] == pytest.approx(20 / 3, abs=1e-3)
    assert late["lead_time_days"] == pytest.approx(59 / 3, abs=1e-3)
    assert late["lead_time_sd"] == pytest.approx(9.018, abs=1e-3)  # sample sd of 11, 19, 29
    assert (good["on_time_rate"], late["on_time_rate"]) == (1.0, 0.0)
    assert late["safety_stock"] > 2 * good["safety_stock"] > 0
    assert late["reorder_point"] > good["reorder_point"]
    assert late["suggested_qty"] > good["suggested_qty"] > 0
    assert "3 received PO line(s) of this sku" in late["reason"]


def test_a_sku_two_suppliers_deliver_is_ordered_from_the_punctual_one(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn, settings: Settings
) -> None:
    _late_supplier_world(landing, ingest)

    shared = advise(con, settings)["SKU-S", "WH"]

    # no receipt of SKU-S yet: each supplier's lead time over its other skus
    assert shared["supplier_id"] == "SUP-GOOD"
    assert shared["lead_time_source"] == "supplier"
    assert shared["lead_time_days"] == pytest.approx(20 / 3, abs=1e-3)
    assert "of the supplier (other skus)" in shared["reason"]


def test_sku_without_history_one_receipt_and_no_demand_get_plain_advice(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn, settings: Settings
) -> None:
    base(
        landing,
        "SKU-N,New,active,true,,0,21,,2026-09-01T00:00:00Z,",  # no PO, no order
        "SKU-X,Unknown,active,true,,4,,,2026-09-01T00:00:00Z,",  # no lead time anywhere
        "SKU-1,Once,active,true,,0,9,,2026-09-01T00:00:00Z,12",  # one receipt, packs of 12
    )
    pos = HEADERS["purchase_orders"]
    feed(
        landing,
        "purchase_orders",
        "po1.csv",
        pos,
        "P1,1,SUP-1,SKU-1,12,WH,2026-11-05,open,2026-11-01T00:00:00Z",
    )
    ingest(as_of=datetime(2026, 11, 2, tzinfo=UTC))
    feed(
        landing,
        "purchase_orders",
        "po2.csv",
        pos,
        "P1,1,SUP-1,SKU-1,12,WH,2026-11-05,received,2026-11-06T00:00:00Z",
    )
    feed(
        landing,
        "stock",
        "s.csv",
        HEADERS["stock"],
        "WH,SKU-N,5,2026-11-22T00:00:00Z",
        "WH,SKU-X,0,2026-11-22T00:00:00Z",
        "WH,SKU-1,0,2026-11-22T00:00:00Z",
    )
    orders(
        landing, ("O1", "2026-11-20", "SKU-1", 3, "open"), ("O2", "2026-11-21", "SKU-X", 1, "open")
    )
    ingest()

    advice = advise(con, settings)

    new = advice["SKU-N", "WH"]
    assert (new["demand_units"], new["daily_demand"], new["demand_sd"]) == (0, 0.0, 0.0)
    assert (new["lead_time_source"], new["lead_time_days"], new["supplier_id"]) == (
        "product",
        21.0,
        None,
    )
    assert (new["safety_stock"], new["reorder_point"], new["suggested_qty"]) == (0.0, 0.0, 0)
    assert "no demand in the last" in new["reason"]
    assert "configured safety stock 0 is at the computed 0" in new["reason"]
    unknown = advice["SKU-X", "WH"]
    assert (unknown["lead_time_source"], unknown["reorder_point"], unknown["suggested_qty"]) == (
        "none",
        None,
        0,
    )
    assert unknown["reason"].endswith("set products.lead_time_days")
    once = advice["SKU-1", "WH"]
    assert (once["lead_time_source"], once["lead_time_samples"]) == ("supplier_sku", 1)
    assert (once["lead_time_days"], once["lead_time_sd"]) == (5.0, 0.0)
    assert "one receipt: lead-time variability unknown, sd_L = 0" in once["reason"]
    assert once["pack_size"] == 12 and once["suggested_qty"] % 12 == 0 and once["suggested_qty"] > 0


def test_products_file_without_pack_size_still_loads(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn
) -> None:
    feed(
        landing,
        "products",
        "old.csv",
        HEADERS["products"],
        "SKU-A,Widget,active,true,,0,7,,2026-09-01T00:00:00Z",
    )
    feed(
        landing,
        "products",
        "new.csv",
        PRODUCTS,
        "SKU-B,Gadget,active,true,,0,7,,2026-09-01T00:00:00Z,6",
        "SKU-C,Bad,active,true,,0,7,,2026-09-01T00:00:00Z,0",
    )

    ingest()

    stored = dict(con.execute("select sku, pack_size from products order by sku").fetchall())
    assert stored == {"SKU-A": None, "SKU-B": 6}
    (reason,) = con.execute("select reason from quarantine").fetchone()
    assert "pack_size" in reason and "greater than 0" in reason
