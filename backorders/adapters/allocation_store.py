"""Reconcile and allocate in DuckDB: the marts, the set-based allocation, and its results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from backorders.adapters import audit, store
from backorders.domain.priority import order_by_sql
from backorders.settings import Settings


@dataclass(frozen=True)
class Position:
    """Stock against open backorders, per run: the reconcile step's headline numbers."""

    skus_with_demand: int
    open_lines: int
    open_units: int
    on_hand_units: int
    safety_units: int
    usable_stock_units: int
    incoming_units: int
    overdue_po_lines: int
    fillable_now_lines: int


def reconcile(con: duckdb.DuckDBPyConnection, *, as_of: datetime, settings: Settings) -> Position:
    """Build book stock, supply lots and ranked demand; say what is fillable now."""
    with store.transaction(con):
        store.run(con, "marts/book_stock", {"as_of": as_of})
        store.run(con, "marts/supply_lots", {"as_of": as_of})
        demand = store.sql("marts/demand_lines").replace(
            "{order_by}", order_by_sql(settings.priority_key)
        )
        con.execute(
            demand,
            {"tiers": settings.tiers, "keep_committed": settings.keep_committed, "as_of": as_of},
        )
    row = store.run(con, "marts/position").fetchone()
    assert row is not None
    return Position(*(int(v or 0) for v in row))


def allocate(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Allocate supply to open lines and write allocations, line_status and promise changes."""
    with store.transaction(con):
        _allocate_sql(con)
        store.run(
            con, "allocate/line_status", {"as_of": as_of, "handling_days": settings.handling_days}
        )
        con.execute("delete from allocations where run_id = $r", {"r": run_id})
        con.execute(
            "insert into allocations select $r, order_id, line_no, sku, supply_kind, supply_ref, "
            "qty, available_on + $h::integer from _alloc",
            {"r": run_id, "h": settings.handling_days},
        )
        store.run(con, "allocate/promise_changes", {"run_id": run_id})
        con.execute("delete from line_status")
        con.execute(
            "insert into line_status select order_id, line_no, customer_id, sku, qty_ordered, "
            "qty_shipped, qty_allocated, qty_promised, qty_unpromised, promised_date, status, "
            "priority_rank, reason, $r from _line_status",
            {"r": run_id},
        )
        summary = summarize(con, run_id)
        digest, n_changes, n_allocs = store.run(
            con, "allocate/decisions_digest", {"run_id": run_id}
        ).fetchone()
        # One audit row per run covers every line's decision: the rows themselves are in
        # promise_changes and allocations (append-only), the digest makes edits detectable.
        decisions = {"digest": digest, "promise_changes": n_changes, "allocations": n_allocs}
        audit.append(
            con,
            run_id,
            [
                audit.AuditEvent("allocation_decisions", "run", run_id, decisions),
                audit.AuditEvent("allocation_completed", "run", run_id, summary),
            ],
            logged_at=now,
        )
    return summary


_STOCK = (
    "select sku, supply_kind, supply_ref, qty, available_on, "
    "row_number() over (partition by sku order by supply_ref) as ord "
    "from supply_lots where supply_kind = 'stock' and usable"
)
_PO = (
    "select sku, supply_kind, supply_ref, qty, available_on, "
    "row_number() over (partition by sku order by available_on, supply_ref) as ord "
    "from supply_lots where supply_kind = 'po' and usable"
)
# committed lines (held stock last run) first, then rank order
_STOCK_DEMAND = (
    "select sku, order_id, line_no, qty_open as qty, "
    "row_number() over (partition by sku order by committed desc, priority_rank) as ord "
    "from demand_lines {where}"
)


def _pour(con: duckdb.DuckDBPyConnection, demand: str, supply: str, into: str) -> None:
    con.execute(f"create or replace temp view _pour_demand as {demand}")
    con.execute(f"create or replace temp view _pour_supply as {supply}")
    store.run(con, "allocate/pour")
    con.execute(f"drop table if exists {into}")
    con.execute(f"alter table _poured rename to {into}")


def _allocate_sql(con: duckdb.DuckDBPyConnection) -> None:
    """The three pours of domain.allocation, set-based: stock, hold, accept, POs -> _alloc."""
    _pour(con, _STOCK_DEMAND.format(where=""), _STOCK, "_stock_alloc")
    store.run(con, "allocate/held_orders")
    if store.scalar(con, "select count(*) from _held"):
        # held ship-complete orders give their stock back: pour again without them
        where = "where order_id not in (select order_id from _held)"
        _pour(con, _STOCK_DEMAND.format(where=where), _STOCK, "_stock_alloc")
    store.run(con, "allocate/accept_backorders")
    _pour(
        con,
        "select sku, order_id, line_no, accepted as qty, priority_rank as ord from _accept",
        _PO,
        "_po_alloc",
    )
    con.execute(
        "create or replace temp table _alloc as "
        "select * from _stock_alloc union all select * from _po_alloc"
    )


def summarize(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Counts by line status, units by supply kind, and promised lines by week."""
    by_status = dict(
        con.execute("select status, count(*) from line_status group by all order by 1").fetchall()
    )
    units = dict(
        con.execute(
            "select supply_kind, sum(qty)::bigint from allocations where run_id = $r group by all",
            {"r": run_id},
        ).fetchall()
    )
    by_week = [
        (str(week), int(n))
        for week, n in con.execute(
            "select coalesce(date_trunc('week', promised_date)::date::varchar, "
            "'no date yet (ship-complete order waiting for another line)'), count(*) "
            "from line_status where status = 'promised' group by all order by 1"
        ).fetchall()
    ]
    changes = dict(
        con.execute(
            "select change, count(*) from promise_changes where run_id = $r group by all order by 1",
            {"r": run_id},
        ).fetchall()
    )
    return {
        "lines_by_status": by_status,
        "units_allocated_from_stock": int(units.get("stock", 0)),
        "units_promised_from_po": int(units.get("po", 0)),
        "promised_lines_by_week": by_week,
        "promise_changes": changes,
    }
