"""Reconcile and allocate in DuckDB: the marts, the set-based allocation, and its results."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from backorders.adapters import audit, feed_rules, store
from backorders.domain.priority import order_by_sql
from backorders.settings import Settings


@dataclass(frozen=True)
class Position:
    """The supply open backorders can draw, per run: the reconcile step's headline numbers."""

    on_hand_units: int
    safety_units: int
    usable_stock_units: int
    skus_in_stock: int
    incoming_units: int
    incoming_po_lines: int
    overdue_po_lines: int


def reconcile(con: duckdb.DuckDBPyConnection, *, as_of: datetime, settings: Settings) -> Position:
    """Build book stock and the supply lots (stock after safety stock, open POs)."""
    with store.transaction(con):
        store.run(con, "marts/book_stock", {"as_of": as_of})
        store.run(con, "marts/supply_lots", {"as_of": as_of})
    row = store.run(con, "marts/position").fetchone()
    assert row is not None
    return Position(*(int(v or 0) for v in row))


# the order-value aggregate costs a pass over all order lines: only when the key reads it
_ORDER_VALUE_JOIN = (
    "left join (select order_key, sum(qty * unit_price) as order_value from order_lines "
    "where status <> 'cancelled' group by all) as v on v.order_key = ol.order_key"
)
# lines whose sku has no product row (inserted by hand, or the product deleted by hand)
# get a negative sku key per run
_UNLINKED_JOIN = "left join _unlinked_skus as u on u.sku = ol.sku"


# rows inserted by hand have no key of their own: numbered after the largest so far,
# as the feeds' MERGE numbers new rows (feed_rules.OWN_KEYS)
_NUMBER_ROWS = (
    "update {t} set {k} = n.k from (select rowid as rid, "
    "(select coalesce(max({k}), 0) from {t}) + row_number() over () as k "
    "from {t} where {k} is null) as n where {t}.rowid = n.rid"
)


def link_keys(con: duckdb.DuckDBPyConnection) -> bool:
    """Key the rows inserted by hand, relink lost links; number the skus without a product.

    What the feeds' MERGE does for every row it stores, done for the rows that did not
    come through it (normally none: then this is one check, about 1 s at 10M lines).
    Returns whether some line's sku has no product row (and so no sku key).
    """
    unlinked = "select null::varchar as sku, null::bigint as sku_key limit 0"
    if store.scalar(con, store.sql("allocate/unlinked_count")):
        for table, key in feed_rules.OWN_KEYS.items():
            con.execute(_NUMBER_ROWS.format(t=table, k=key))
        store.run(con, "allocate/link_keys")
        unlinked = (
            "select sku, -row_number() over (order by sku) as sku_key from (select distinct sku "
            "from order_lines where sku_key is null or sku_key not in (select sku_key from products))"
        )
    con.execute(f"create or replace temp table _unlinked_skus as {unlinked}")
    return bool(store.scalar(con, "select count(*) from _unlinked_skus"))


def _rank_demand(con: duckdb.DuckDBPyConnection, *, as_of: datetime, settings: Settings) -> None:
    """Rank the open lines per sku (one sort) into the temp table _demand."""
    with_value = "order_value" in settings.priority_key
    unlinked = link_keys(con)
    sql = (
        store.sql("allocate/demand")
        .replace("{sku_key}", "coalesce(u.sku_key, ol.sku_key)" if unlinked else "ol.sku_key")
        .replace("{unlinked_join}", _UNLINKED_JOIN if unlinked else "")
        .replace("{order_by}", order_by_sql(settings.priority_key))
        .replace("{order_value_col}", "coalesce(v.order_value, 0)" if with_value else "0")
        .replace("{order_value_join}", _ORDER_VALUE_JOIN if with_value else "")
    )
    con.execute(
        sql, {"tiers": settings.tiers, "keep_committed": settings.keep_committed, "as_of": as_of}
    )


class _Clock:
    """Seconds per step, when the caller asks for them (benchmarks, logs)."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into, self.t = into, time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        if self.into is not None:
            self.into[step] = round(self.into.get(step, 0.0) + now - self.t, 2)
        self.t = now


def _allocate_sql(
    con: duckdb.DuckDBPyConnection, *, as_of: datetime, settings: Settings, clock: _Clock
) -> None:
    """The policy of domain.allocation, set-based: ranked demand -> _lines (shares), _alloc (rows)."""
    _rank_demand(con, as_of=as_of, settings=settings)
    clock.lap("rank")
    store.run(con, "allocate/sku_totals")
    store.run(con, "allocate/lots")
    store.run(con, "allocate/placed")
    store.run(con, "allocate/held_orders")
    if store.scalar(con, "select count(*) from _held"):
        store.run(con, "allocate/held_before")
    else:
        con.execute(
            "create or replace temp table _held_before "
            "(lid bigint, held boolean, held_before bigint)"
        )
    store.run(con, "allocate/lines")
    clock.lap("shares")
    # _lines has all that is left to do: free the ranked demand (about 1 GB at 10M lines)
    con.execute("drop view _placed")
    con.execute("drop table _demand")
    store.run(con, "allocate/po_span")
    store.run(con, "allocate/alloc_rows")
    clock.lap("rows")


def allocate(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    now: datetime,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Allocate supply to open lines and write allocations, line_status and promise changes."""
    clock = _Clock(timings)
    with store.transaction(con):
        _allocate_sql(con, as_of=as_of, settings=settings, clock=clock)
        run_no = _run_number(con, run_id)
        con.execute("delete from allocation_rows where run_no = $n", {"n": run_no})
        con.execute(
            "insert into allocation_rows select $n, ol.order_id, ol.line_no, k.sku, "
            "a.supply_kind, a.supply_ref, a.qty, a.available_on + $h::integer from _alloc as a "
            "join order_lines as ol on ol.line_key = a.lid join _sku as k on k.sid = a.sid",
            {"n": run_no, "h": settings.handling_days},
        )
        clock.lap("write_allocations")
        # The new line results (the table behind the line_status view) are written once,
        # into a twin of the table (same columns and constraints), compared with the old
        # one, then swapped in: no 10M-row temporary copy in memory, no 10M-row delete.
        _create_twin(con, "line_results", "line_results_next")
        store.run(
            con,
            "allocate/line_status",
            {"as_of": as_of, "handling_days": settings.handling_days},
        )
        clock.lap("write_line_status")
        store.run(con, "allocate/promise_changes", {"run_id": run_id})
        con.execute("drop table line_results")
        con.execute("alter table line_results_next rename to line_results")
        con.execute("delete from line_results_run")
        con.execute("insert into line_results_run values ($r)", {"r": run_id})
        _drop_scratch(con)
        clock.lap("promise_changes")
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
        clock.lap("summary_and_audit")
    clock.lap("commit")
    return summary


def _run_number(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """The run's number in allocation_runs (the allocations view maps it to the run id)."""
    query = "select run_no from allocation_runs where run_id = $r"
    found = store.scalar(con, query, {"r": run_id})
    if found is None:
        con.execute(
            "insert into allocation_runs select coalesce(max(run_no), 0) + 1, $r "
            "from allocation_runs",
            {"r": run_id},
        )
        found = store.scalar(con, query, {"r": run_id})
    return int(found)


def _create_twin(con: duckdb.DuckDBPyConnection, table: str, twin: str) -> None:
    """Create an empty table with the same columns and constraints as `table`."""
    row = con.execute(
        "select sql from duckdb_tables() where schema_name = 'main' and table_name = $t",
        {"t": table},
    ).fetchone()
    assert row is not None, f"no table {table}"
    ddl = re.sub(rf"^CREATE TABLE {table}\b", f"CREATE TABLE {twin}", row[0], flags=re.IGNORECASE)
    con.execute(f"drop table if exists {twin}")
    con.execute(ddl)


def _drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Free the run's temporary tables (they hold about a GB at 10M lines)."""
    # _demand and _placed are dropped as soon as _lines exists (_allocate_sql)
    for t in (
        "_alloc",
        "_po_span",
        "_lines",
        "_held_before",
        "_held",
        "_lots",
        "_sku",
        "_unlinked_skus",
    ):
        con.execute(f"drop table if exists {t}")


def summarize(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Counts by line status, units by supply kind, and promised lines by week."""
    # the table behind the line_status view: counting needs none of the view's joins
    by_status = dict(
        con.execute(
            "select status::varchar, count(*) from line_results group by all order by 1"
        ).fetchall()
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
            "from line_results where status = 'promised' group by all order by 1"
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
