"""Fixtures for ingest integration tests: a real DuckDB file and a landing zone in tmp_path."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backorders.adapters import allocation_store, audit, store
from backorders.adapters.ingest import FileResult, ingest_landing
from backorders.devtools.stripe_server import FakeStripe
from backorders.settings import Settings, load_settings

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

# CSV headers of the feeds, in contract column order.
HEADERS = {
    "customers": "customer_id,email,name,tier,locale,email_opt_in,updated_at",
    "products": (
        "sku,name,status,backorderable,max_backorder_qty,safety_stock,lead_time_days,"
        "substitute_skus,updated_at"
    ),
    "orders": "order_id,customer_id,placed_at,status,ship_complete,priority,currency,updated_at",
    "order_lines": "order_id,line_no,sku,qty,unit_price,status,updated_at",
    "stock": "location_id,sku,on_hand,as_of",
    "purchase_orders": (
        "po_id,line_no,supplier_id,sku,qty,location_id,expected_at,status,updated_at"
    ),
    "supplier_updates": "supplier_id,po_id,line_no,expected_at,qty_confirmed,reason,reported_at",
    "shipments": "shipment_id,order_id,line_no,sku,qty,location_id,shipped_at",
}

# The minimal valid base set: later feeds can reference these ids.
BASE_CUSTOMERS = ("C1", "C2")
BASE_SKUS = ("SKU-A", "SKU-B", "SKU-C")
BASE_ORDERS = ("O1", "O2")

_BASE_FILES = {
    "customers": (
        "C1,ann@example.com,Ann,gold,en-US,true,2026-11-01T00:00:00Z\n"
        "C2,bob@example.com,Bob,standard,de-DE,false,2026-11-01T00:00:00Z\n"
    ),
    "products": (
        "SKU-A,Widget,active,true,,0,7,,2026-11-01T00:00:00Z\n"
        "SKU-B,Gadget,active,true,10,2,14,SKU-A,2026-11-01T00:00:00Z\n"
        "SKU-C,Gizmo,discontinued,false,,0,,,2026-11-01T00:00:00Z\n"
    ),
    "orders": (
        "O1,C1,2026-11-10T09:00:00Z,open,false,0,USD,2026-11-10T09:00:00Z\n"
        "O2,C2,2026-11-11T09:00:00Z,open,true,5,EUR,2026-11-11T09:00:00Z\n"
    ),
}


def csv_text(feed: str, *rows: str) -> str:
    """A CSV file of `feed`: the contract header, then the given rows (each gets a newline)."""
    return HEADERS[feed] + "\n" + "".join(r + "\n" for r in rows)


def write(landing: Path, feed: str, name: str, content: str | bytes) -> Path:
    """Drop a file into <landing>/<feed>/<name>; text is written as UTF-8, bytes as they are."""
    path = landing / feed / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def write_base(landing: Path) -> dict[str, Path]:
    """Write the minimal valid base set (customers, products, orders); return their paths."""
    return {
        feed: write(landing, feed, f"000_base_{feed}.csv", csv_text(feed) + body)
        for feed, body in _BASE_FILES.items()
    }


def result_for(results: list[FileResult], path: Path) -> FileResult:
    """The one result of a run for the file at `path`."""
    found = [r for r in results if Path(r.path) == path]
    assert len(found) == 1, f"expected one result for {path}, got {found}"
    return found[0]


def rows(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None) -> list:
    """All rows of a query, as a list of tuples."""
    return con.execute(query, params or {}).fetchall()


def snapshot(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    """Every row of a table, in a stable order: to prove nothing changed."""
    return con.execute(f"select * from {table} order by all").fetchall()


def quarantined(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[int, str, str]]:
    """(row_number, raw, reason) of the quarantined rows of one file, by row number."""
    return con.execute(
        "select row_number, raw, reason from quarantine where file = $f order by row_number",
        {"f": str(path)},
    ).fetchall()


def insert_line_status(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Set a previous run's line_status: rows shaped like the view, into the table behind it.

    The table keys a line by its order line's integer key (migration 010), and the view
    reads the order id, line number and sku from the order line and the customer from
    its order: those rows must exist, and the customer and sku given here are not stored.
    """
    con.execute("delete from line_results")
    con.execute("delete from line_results_run")
    if not rows:
        return
    # as an allocation does before it writes line_results: link hand-inserted rows
    allocation_store.link_keys(con)
    run_ids = {r.get("run_id", "previous") for r in rows}
    assert len(run_ids) == 1, "line_status holds one run"
    cols = [c for c in rows[0] if c not in ("run_id", "customer_id", "sku")]
    names = ["note" if c == "reason" else c for c in cols]
    one = "(" + ", ".join(["?"] * len(cols)) + ")"
    con.execute(
        f"create or replace temp table _given ({', '.join(cols)}) as "
        f"values {', '.join([one] * len(rows))}",
        [r[c] for r in rows for c in cols],
    )
    stored = [n for n in names if n not in ("order_id", "line_no")]
    given = [c for c in cols if c not in ("order_id", "line_no")]
    con.execute(
        f"insert into line_results (line_key, {', '.join(stored)}) "
        f"select ol.line_key, {', '.join(f'g.{c}' for c in given)} "
        "from _given as g join order_lines as ol using (order_id, line_no)"
    )
    missing = con.execute(
        "select count(*) from _given anti join order_lines using (order_id, line_no)"
    )
    assert missing.fetchone() == (0,), "every line_status row needs its order line"
    con.execute("drop table _given")
    con.execute("insert into line_results_run values (?)", [run_ids.pop()])


@pytest.fixture
def settings() -> Settings:
    """Settings pinned to the defaults the tests rely on."""
    return load_settings(
        tiers=["platinum", "gold", "silver", "standard"],
        max_eta_days=730,
        stock_min_row_ratio=0.5,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "backorders.duckdb"


@pytest.fixture
def con(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh, migrated DuckDB file."""
    c = store.connect(db_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """The local Stripe server, serving, with the one key the payment tests use."""
    from tests.integration.payments_world import KEY

    with FakeStripe(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def pay_landing(landing: Path) -> Path:
    """The landing zone with the customer and products of the payment tests' orders."""
    from tests.integration.payments_world import base

    base(landing)
    return landing


IngestFn = Callable[..., list[FileResult]]


@pytest.fixture
def ingest(con: duckdb.DuckDBPyConnection, landing: Path, settings: Settings) -> IngestFn:
    """Run ingest on the landing zone; each call is a new run (run-1, run-2, ...)."""
    counter = itertools.count(1)

    def _run(**overrides: Any) -> list[FileResult]:
        kwargs: dict[str, Any] = {
            "run_id": f"run-{next(counter)}",
            "as_of": AS_OF,
            "settings": settings,
            "now": lambda: AS_OF,
            "progress": lambda s: None,
        }
        kwargs.update(overrides)
        results = ingest_landing(con, landing, **kwargs)
        # every ingest, whatever its files, leaves the audit chain intact
        assert audit.verify(con) == []
        return results

    return _run


@pytest.fixture
def base(landing: Path, ingest: IngestFn) -> dict[str, Path]:
    """The base set written and ingested (run-1); later files can reference it."""
    paths = write_base(landing)
    results = ingest()
    assert [(r.feed, r.status, r.rows_loaded) for r in results] == [
        ("customers", "loaded", len(BASE_CUSTOMERS)),
        ("products", "loaded", len(BASE_SKUS)),
        ("orders", "loaded", len(BASE_ORDERS)),
    ]
    return paths


def database_before(path: Path, version: int) -> duckdb.DuckDBPyConnection:
    """A new DuckDB file with every migration below `version` applied (and recorded), as a
    database made by an older release holds it; store.connect(path) then migrates it."""
    con = duckdb.connect(str(path))
    con.execute(
        "create table schema_migrations "
        "(version integer primary key, name varchar not null, applied_at timestamptz not null)"
    )
    for v, sql in store._migrations():
        if v < version:
            con.execute(sql.read_text(encoding="utf-8"))
            con.execute(
                "insert into schema_migrations values ($v, $n, now())", {"v": v, "n": sql.name}
            )
    return con


def allocate_demo(con: duckdb.DuckDBPyConnection, landing: Path, as_of: datetime) -> None:
    """Ingest a demo landing zone, reconcile and allocate, as one cycle does (run r1)."""
    s = load_settings()
    now = lambda: datetime.now(UTC)  # noqa: E731
    ingest_landing(
        con, landing, run_id="r1", as_of=as_of, settings=s, now=now, progress=lambda _: None
    )
    allocation_store.reconcile(con, as_of=as_of, settings=s)
    allocation_store.allocate(con, run_id="r1", as_of=as_of, settings=s, now=now())
