"""Replenishment advice in DuckDB: measure demand, lead times and positions set-based
(sql/replenish/), apply the pure core (backorders.domain.replenishment) to the one row
per sku and location they give, and store the advice of the run."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from backorders.adapters import store
from backorders.domain.replenishment import AdviceInput, advise, daily_demand, z_value
from backorders.settings import Settings

# figures stored rounded (to these decimals): enough to read, and to recompute from
ROUNDED = {
    "daily_demand": 3, "demand_sd": 3, "lead_time_days": 3, "lead_time_sd": 3,
    "on_time_rate": 3, "safety_stock": 2, "reorder_point": 2, "safety_stock_gap": 2,
}  # fmt: skip
# the columns of replenishment_advice after run_id, in table order (migration 030)
COLUMNS = (
    "sku",
    "location_id",
    "window_days",
    "demand_units",
    "daily_demand",
    "demand_sd",
    "lead_time_days",
    "lead_time_sd",
    "lead_time_source",
    "lead_time_samples",
    "supplier_id",
    "on_time_rate",
    "service_level",
    "safety_stock",
    "reorder_point",
    "on_hand",
    "on_order",
    "committed",
    "backordered",
    "position",
    "suggested_qty",
    "pack_size",
    "configured_safety_stock",
    "safety_stock_gap",
    "reason",
)


class NoAdvice(LookupError):
    """No committed run has replenishment advice yet."""


def window_days(con: duckdb.DuckDBPyConnection, as_of: datetime, configured: int) -> int:
    """The demand window: the configured days, or fewer when the order history is shorter."""
    first = store.scalar(
        con, "select min(placed_at) from orders where placed_at <= $a", {"a": as_of}
    )
    if first is None:
        return configured
    history = math.ceil((as_of - first).total_seconds() / 86400)
    return max(1, min(configured, history))


def _lap(timings: dict[str, float] | None, step: str, started: float) -> float:
    """Add the seconds since `started` to the step (when asked for); now."""
    now = time.perf_counter()
    if timings is not None:
        timings[step] = round(timings.get(step, 0.0) + now - started, 3)
    return now


def _stored(column: str) -> str:
    """The column as inserted: rounded in SQL when it is a figure (ROUNDED)."""
    return f"round({column}, {ROUNDED[column]})" if column in ROUNDED else column


def compute(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    settings: Settings,
    timings: dict[str, float] | None = None,
) -> pa.Table:
    """The advice rows of every sku and location, as an Arrow table (COLUMNS order)."""
    t = time.perf_counter()
    days = window_days(con, as_of, settings.replenish_window_days)
    params = {"as_of": as_of, "since": as_of - timedelta(days=days)}
    store.run(con, "replenish/home", params)
    store.run(con, "replenish/demand", params)
    store.run(con, "replenish/options", {"as_of": as_of})
    store.run(con, "replenish/position")
    inputs = store.run(con, "replenish/inputs").fetchall()
    t = _lap(timings, "sql", t)
    z = z_value(settings.replenish_service_level)
    cover, level = settings.replenish_cover_days, settings.replenish_service_level
    out = []
    for row in inputs:
        sku, loc, active, units, sum_sq, on_hand, on_order, committed, backordered = row[:9]
        pack, configured, supplier, rate, lt, lt_sd, source, n = row[9:]
        d, sd = daily_demand(units, sum_sq, days)
        a = AdviceInput(
            sku, loc, active, days, units, d, sd, lt, lt_sd, source, n, supplier, rate,
            on_hand, on_order, committed, backordered, pack, configured,
        )  # fmt: skip
        adv = advise(a, z, cover)
        out.append((
            sku, loc, days, units, d, sd, lt, lt_sd, source, n, supplier, rate, level,
            adv.safety_stock, adv.reorder_point, on_hand, on_order, committed, backordered,
            a.position, adv.suggested_qty, pack, configured, adv.safety_stock_gap, adv.reason,
        ))  # fmt: skip
    columns = list(zip(*out, strict=True)) if out else [() for _ in COLUMNS]
    cols = dict(zip(COLUMNS, map(list, columns), strict=True))
    table = pa.table(cols)
    _lap(timings, "python", t)
    return table


def replenish(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Compute and store this run's advice (one transaction); its headline figures."""
    with store.transaction(con):
        advice = compute(con, as_of=as_of, settings=settings, timings=timings)
        t = time.perf_counter()
        con.execute("delete from replenishment_advice where run_id = $r", {"r": run_id})
        con.register("_rp_advice", advice)
        try:
            con.execute(
                f"insert into replenishment_advice (run_id, {', '.join(COLUMNS)}) "
                f"select $r, {', '.join(_stored(c) for c in COLUMNS)} from _rp_advice",
                {"r": run_id},
            )
        finally:
            con.unregister("_rp_advice")
        # the advice of older runs goes (a row per sku and location per run adds up): this
        # run's and that of the latest replenish_keep_runs - 1 committed runs stay
        con.execute(
            "delete from replenishment_advice where run_id <> $r and run_id not in ("
            "select run_id from runs where run_id <> $r and status like 'succeeded%' "
            "order by started_at desc, run_id desc limit $keep)",
            {"r": run_id, "keep": settings.replenish_keep_runs - 1},
        )
        row = con.execute(
            "select count(*), count(*) filter (where suggested_qty > 0), "
            "coalesce(sum(suggested_qty), 0), count(distinct sku) filter (where suggested_qty > 0), "
            "count(*) filter (where lead_time_source in ('supplier_sku', 'supplier')), "
            "count(*) filter (where lead_time_source = 'none'), any_value(window_days) "
            "from replenishment_advice where run_id = $r",
            {"r": run_id},
        ).fetchone()
        _lap(timings, "write", t)
    assert row is not None
    return {
        "rows": int(row[0]),
        "below_reorder_point": int(row[1]),
        "suggested_units": int(row[2]),
        "skus_to_order": int(row[3]),
        "measured_lead_times": int(row[4]),
        "no_lead_time": int(row[5]),
        "window_days": int(row[6] or settings.replenish_window_days),
        "service_level": settings.replenish_service_level,
        "cover_days": settings.replenish_cover_days,
    }


def latest_run(con: duckdb.DuckDBPyConnection) -> str:
    """The latest committed (succeeded) run that stored advice; NoAdvice when there is none."""
    if not store.scalar(
        con,
        "select count(*) from information_schema.tables where table_name = 'replenishment_advice'",
    ):
        # opened read-only, a database of an older version is not migrated
        raise NoAdvice(
            "this database has no replenishment advice yet (made by an older version): the "
            "next `backorders run` adds it"
        )
    run = store.scalar(
        con,
        "select r.run_id from runs as r where r.status like 'succeeded%' and exists "
        "(select 1 from replenishment_advice as a where a.run_id = r.run_id) "
        "order by r.started_at desc, r.run_id desc limit 1",
    )
    if run is None:
        raise NoAdvice(
            "no committed run with replenishment advice yet: run `backorders run` (or "
            "`backorders demo`) first"
        )
    return str(run)


def advice_count(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """How many sku/location rows of advice the run stored."""
    q = "select count(*) from replenishment_advice where run_id = $r"
    return int(store.scalar(con, q, {"r": run_id}) or 0)


def advice_rows(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    only_orders: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The run's advice rows as dicts (COLUMNS), by sku and location; orders only if asked."""
    query = f"select {', '.join(COLUMNS)} from replenishment_advice where run_id = $r"
    if only_orders:
        query += " and suggested_qty > 0"
    query += " order by sku, location_id"
    if limit is not None:
        query += f" limit {int(limit)}"
    cur = con.execute(query, {"r": run_id})
    return [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]
