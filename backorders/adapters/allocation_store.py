"""Reconcile and allocate in DuckDB: the marts, the set-based allocation, and its results."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from backorders.adapters import allocation_plan, audit, feed_rules, store
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
    supply_mode: str = "full"  # why reconcile rebuilt all skus, or "incremental"
    skus_rebuilt: int = 0  # skus rebuilt by an incremental reconcile


def reconcile(
    con: duckdb.DuckDBPyConnection, *, as_of: datetime, settings: Settings, full: bool = False
) -> Position:
    """Build book stock and the supply lots (stock after safety stock, open POs).

    Only the skus whose inputs changed since the last reconcile are rebuilt, unless the
    run is full (asked, first run, a new day: allocation_plan.plan_supply).
    """
    with store.transaction(con):
        plan = allocation_plan.plan_supply(con, as_of=as_of, full=full)
        if plan.full or plan.skus:
            _supply_marts(con, as_of=as_of, full=plan.full)
        allocation_plan.commit_supply(con, plan, as_of=as_of)
        # the headline numbers read supply_lots only: unchanged when no sku was rebuilt
        cached = allocation_plan.stored_value(con, "position")
        if plan.full or plan.skus or cached is None:
            row = store.run(con, "marts/position").fetchone()
            assert row is not None
            cached = ",".join(str(int(v or 0)) for v in row)
            allocation_plan.store_value(con, "position", cached)
    numbers = (int(v) for v in cached.split(","))
    return Position(*numbers, supply_mode=plan.why, skus_rebuilt=plan.skus)


_ONLY_SUPPLY_DIRTY = "and {c}sku in (select sku from _supply_dirty)"


def _supply_marts(con: duckdb.DuckDBPyConnection, *, as_of: datetime, full: bool) -> None:
    """Book stock, then supply lots: whole, or the rows of the skus in _supply_dirty."""
    for mart in ("book_stock", "supply_lots"):
        sql = store.sql(f"marts/{mart}")
        if full:
            sql = sql.replace("{head}", f"create or replace table {mart} as")
            for ph in ("{only}", "{only_b}", "{only_po}"):
                sql = sql.replace(ph, "")
        else:
            con.execute(f"delete from {mart} where sku in (select sku from _supply_dirty)")
            sql = sql.replace("{head}", f"insert into {mart}")
            for ph, c in (("{only}", ""), ("{only_b}", "b."), ("{only_po}", "po.")):
                sql = sql.replace(ph, _ONLY_SUPPLY_DIRTY.format(c=c))
        con.execute(sql, {"as_of": as_of})


# the order value per order, as allocation_plan stored it for this run (kept current for
# the orders whose value can have changed: a full run computes all)
_ORDER_VALUE_JOIN = "left join alloc_fp_order as v on v.order_key = ol.order_key"
# lines whose sku has no product row (inserted by hand, or the product deleted by hand)
# get a negative sku key per run (such a run is always full)
_UNLINKED_JOIN = "left join _unlinked_skus as u on u.sku = ol.sku"
# an incremental run reallocates the skus in _dirty (allocation_plan) only
_ONLY_DIRTY = "and ol.sku_key in (select sku_key from _dirty)"
_ONLY_DIRTY_RESULTS = "and sku_key in (select sku_key from _dirty)"


# rows inserted by hand have no key of their own: numbered after the largest so far,
# as the feeds' MERGE numbers new rows (feed_rules.OWN_KEYS)
_NUMBER_ROWS = (
    "update {t} set {k} = n.k from (select rowid as rid, "
    "(select coalesce(max({k}), 0) from {t}) + row_number() over () as k "
    "from {t} where {k} is null) as n where {t}.rowid = n.rid"
)


def check_links(con: duckdb.DuckDBPyConnection) -> tuple[bool, bool]:
    """Key the rows inserted by hand, relink lost links; number the skus without a product.

    What the feeds' MERGE does for every row it stores, done for the rows that did not
    come through it (normally none: then this is one check, about 0.5 s at 10M lines).
    Returns whether it found any such row, and whether some line's sku has no product
    row (and so no sku key).
    """
    unlinked = "select null::varchar as sku, null::bigint as sku_key limit 0"
    found = bool(store.scalar(con, store.sql("allocate/unlinked_count")))
    if found:
        for table, key in feed_rules.OWN_KEYS.items():
            con.execute(_NUMBER_ROWS.format(t=table, k=key))
        store.run(con, "allocate/link_keys")
        unlinked = (
            "select sku, -row_number() over (order by sku) as sku_key from (select distinct sku "
            "from order_lines where sku_key is null or sku_key not in (select sku_key from products))"
        )
    con.execute(f"create or replace temp table _unlinked_skus as {unlinked}")
    return found, bool(store.scalar(con, "select count(*) from _unlinked_skus"))


def link_keys(con: duckdb.DuckDBPyConnection) -> bool:
    """check_links, for callers that need only whether some line's sku has no product row."""
    return check_links(con)[1]


def _rank_demand(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    settings: Settings,
    unlinked: bool,
    incremental: bool,
) -> None:
    """Rank the open lines per sku (one sort) into the temp table _demand."""
    with_value = "order_value" in settings.priority_key
    sql = (
        store.sql("allocate/demand")
        .replace("{sku_key}", "coalesce(u.sku_key, ol.sku_key)" if unlinked else "ol.sku_key")
        .replace("{unlinked_join}", _UNLINKED_JOIN if unlinked else "")
        .replace("{order_by}", order_by_sql(settings.priority_key))
        .replace("{order_value_col}", "coalesce(v.order_value, 0)" if with_value else "0")
        .replace("{order_value_join}", _ORDER_VALUE_JOIN if with_value else "")
        .replace("{only_dirty}", _ONLY_DIRTY if incremental else "")
        .replace("{only_dirty_results}", _ONLY_DIRTY_RESULTS if incremental else "")
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
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    settings: Settings,
    clock: _Clock,
    unlinked: bool,
    incremental: bool,
) -> None:
    """The policy of domain.allocation, set-based: ranked demand -> _lines (shares), _alloc (rows)."""
    _rank_demand(con, as_of=as_of, settings=settings, unlinked=unlinked, incremental=incremental)
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
    full: bool = False,
) -> dict[str, Any]:
    """Allocate supply to open lines and write allocations, line_status and promise changes.

    Only the skus whose inputs changed since the last run are reallocated, unless the run
    is full (asked, or allocation_plan decides it must be); the tables end the same.
    The plan (mode, skus reallocated, triggers) is in the returned dict under "plan",
    outside the audited summary, which is the same whichever way the run went.
    """
    clock = _Clock(timings)
    with store.transaction(con):
        run_no, reused = _run_number(con, run_id)
        # filled by check_links, when the plan calls it (sku_totals.sql reads it)
        con.execute("create or replace temp table _unlinked_skus (sku varchar, sku_key bigint)")
        plan = allocation_plan.plan_allocation(
            con, as_of=as_of, settings=settings, full=full or reused, check_links=check_links
        )
        unlinked = plan.unlinked
        clock.lap("plan")
        if plan.full or plan.skus:
            _allocate_sql(
                con,
                as_of=as_of,
                settings=settings,
                clock=clock,
                unlinked=unlinked,
                incremental=not plan.full,
            )
        base = run_no if plan.full else _base_run(con, run_no)
        con.execute(
            "update allocation_runs set base_run_no = $b where run_no = $n",
            {"b": base, "n": run_no},
        )
        replaced = None
        if plan.full:
            _write_full(con, run_id=run_id, run_no=run_no, as_of=as_of, settings=settings)
        elif plan.skus:
            replaced = _write_incremental(
                con, run_id=run_id, run_no=run_no, as_of=as_of, settings=settings
            )
        con.execute("delete from line_results_run")
        con.execute("insert into line_results_run values ($r)", {"r": run_id})
        _drop_scratch(con)
        clock.lap("write_results")
        counts = _summary_counts(
            con, run_id=run_id, run_no=run_no, full=plan.full, replaced=replaced
        )
        con.execute(
            "update allocation_runs set summary_counts = $c where run_no = $n",
            {"c": json.dumps(counts, sort_keys=True), "n": run_no},
        )
        summary = summarize(con, run_id, counts)
        digest, n_changes, n_allocs = _decisions_digest(
            con, run_id=run_id, run_no=run_no, full=plan.full
        )
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
    return {**summary, "plan": plan.describe()}


def _write_full(
    con: duckdb.DuckDBPyConnection, *, run_id: str, run_no: int, as_of: datetime, settings: Settings
) -> None:
    """Every sku: all allocation rows of the run, line results written whole and swapped in."""
    con.execute("delete from allocation_rows where run_no = $n", {"n": run_no})
    _insert_allocation_rows(con, run_no=run_no, settings=settings)
    # The new line results (the table behind the line_status view) are written once,
    # into a twin of the table (same columns and constraints), compared with the old
    # one, then swapped in: no 10M-row temporary copy in memory, no 10M-row delete.
    _create_twin(con, "line_results", "line_results_next")
    _new_results(con, "line_results_next", run_id=run_id, as_of=as_of, settings=settings, full=True)
    con.execute("drop table line_results")
    con.execute("alter table line_results_next rename to line_results")


def _new_results(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    full: bool,
) -> None:
    """Line results into `table`, compared with line_results: promise changes, committed skus."""
    _line_status(con, table, as_of=as_of, settings=settings, incremental=not full)
    _promise_changes(con, table, run_id=run_id)
    allocation_plan.record_committed(
        con, "line_results", table, full=full, keep=settings.keep_committed
    )


def _write_incremental(
    con: duckdb.DuckDBPyConnection, *, run_id: str, run_no: int, as_of: datetime, settings: Settings
) -> tuple[Counts, Counts]:
    """The skus in _dirty: their allocation rows replaced (closed at this run), their results.

    Returns the replaced line results' counts, old and new (the run summary's change).
    """
    con.execute(
        "create or replace temp table _dirty_sku as "
        "select p.sku from products as p semi join _dirty as d using (sku_key)"
    )
    con.execute(
        "update allocation_rows set run_to = $n where run_to is null and run_no >= $b "
        "and sku in (select sku from _dirty_sku)",
        {"n": run_no, "b": _base_run(con, run_no)},
    )
    _insert_allocation_rows(con, run_no=run_no, settings=settings)
    con.execute("create or replace temp table _results_new as from line_results limit 0")
    _new_results(con, "_results_new", run_id=run_id, as_of=as_of, settings=settings, full=False)
    dirty = "sku_key in (select sku_key from _dirty)"
    replaced = (_line_counts(con, "line_results", dirty), _line_counts(con, "_results_new"))
    con.execute(f"delete from line_results where {dirty}")
    con.execute("insert into line_results from _results_new")
    con.execute("drop table _results_new")
    con.execute("drop table _dirty_sku")
    return replaced


def _insert_allocation_rows(
    con: duckdb.DuckDBPyConnection, *, run_no: int, settings: Settings
) -> None:
    con.execute(
        "insert into allocation_rows select $n, ol.order_id, ol.line_no, k.sku, "
        "a.supply_kind, a.supply_ref, a.qty, a.available_on + $h::integer, null from _alloc as a "
        "join order_lines as ol on ol.line_key = a.lid join _sku as k on k.sid = a.sid",
        {"n": run_no, "h": settings.handling_days},
    )


def _line_status(
    con: duckdb.DuckDBPyConnection,
    target: str,
    *,
    as_of: datetime,
    settings: Settings,
    incremental: bool,
) -> None:
    sql = (
        store.sql("allocate/line_status")
        .replace("{target}", target)
        .replace("{only_dirty}", _ONLY_DIRTY if incremental else "")
    )
    con.execute(sql, {"as_of": as_of, "handling_days": settings.handling_days})


def _promise_changes(con: duckdb.DuckDBPyConnection, new: str, *, run_id: str) -> None:
    con.execute(store.sql("allocate/promise_changes").replace("{new}", new), {"run_id": run_id})


def _base_run(con: duckdb.DuckDBPyConnection, run_no: int) -> int:
    """The base of the run before this one: the full run whose rows an incremental run keeps."""
    found = store.scalar(
        con,
        "select coalesce(base_run_no, run_no) from allocation_runs where run_no < $n "
        "order by run_no desc limit 1",
        {"n": run_no},
    )
    return int(found) if found is not None else run_no


def _decisions_digest(
    con: duckdb.DuckDBPyConnection, *, run_id: str, run_no: int, full: bool
) -> tuple[str, int, int]:
    """The audited digest of the run's decisions, its promise changes and allocation rows.

    The allocation rows' part (count and two hash sums, additive) is the previous run's
    minus the rows this run replaced plus the rows it wrote, unless the run is full or the
    previous run's part is unknown: then it is summed over all the run's rows.
    """
    prev = con.execute(
        "select alloc_n, alloc_h1, alloc_h2 from allocation_runs where run_no < $n "
        "order by run_no desc limit 1",
        {"n": run_no},
    ).fetchone()
    parts = store.sql("allocate/alloc_digest_parts")
    if full:  # the run is its own base: its rows are all it sees
        n, h1, h2 = con.execute(
            parts.replace("{rows}", "from allocation_rows where run_no = $n"), {"n": run_no}
        ).fetchone() or (0, 0, 0)
    elif prev is None or prev[0] is None:
        n, h1, h2 = con.execute(
            parts.replace("{rows}", "from allocations where run_id = $r"), {"r": run_id}
        ).fetchone() or (0, 0, 0)
    else:
        rows = "from allocation_rows where {w}"
        new = con.execute(
            parts.replace("{rows}", rows.format(w="run_no = $n")), {"n": run_no}
        ).fetchone() or (0, 0, 0)
        gone = con.execute(
            parts.replace("{rows}", rows.format(w="run_to = $n")), {"n": run_no}
        ).fetchone() or (0, 0, 0)
        n, h1, h2 = (int(p) - int(g) + int(w) for p, g, w in zip(prev, gone, new, strict=True))
    con.execute(
        "update allocation_runs set alloc_n = $c, alloc_h1 = $h1::hugeint, "
        "alloc_h2 = $h2::hugeint where run_no = $n",
        {"c": n, "h1": str(h1), "h2": str(h2), "n": run_no},
    )
    row = store.run(
        con,
        "allocate/decisions_digest_from_parts",
        {"run_id": run_id, "n": n, "h1": str(h1), "h2": str(h2)},
    ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1]), int(n)


def _run_number(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, bool]:
    """The run's number in allocation_runs, and whether the run had allocated before.

    A run id allocated again (a retried stage) is redone in full; only the latest run may
    be: the runs after an older one keep rows from its epoch.
    """
    query = "select run_no from allocation_runs where run_id = $r"
    found = store.scalar(con, query, {"r": run_id})
    if found is not None:
        latest = store.scalar(con, "select max(run_no) from allocation_runs")
        if found != latest:
            raise ValueError(
                f"run {run_id} allocated before and later runs exist: "
                "allocate it under a new run id"
            )
        return int(found), True
    con.execute(
        "insert into allocation_runs (run_no, run_id) select coalesce(max(run_no), 0) + 1, $r "
        "from allocation_runs",
        {"r": run_id},
    )
    found = store.scalar(con, query, {"r": run_id})
    return int(found), False


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
        "_dirty",
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


_NO_WEEK = "no date yet (ship-complete order waiting for another line)"
_WEEK = f"coalesce(date_trunc('week', promised_date)::date::varchar, '{_NO_WEEK}')"
Counts = dict[str, dict[str, int]]  # {"status": {...}, "weeks": {...}, "units": {...}}


def _line_counts(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> Counts:
    """Lines by status and promised lines by week, of `table`'s rows matching `where`."""
    status = f"select status::varchar, count(*) from {table} where {where} group by all"
    weeks = (
        f"select {_WEEK}, count(*) from {table} where {where} and status = 'promised' group by all"
    )
    return {
        "status": dict(con.execute(status).fetchall()),
        "weeks": dict(con.execute(weeks).fetchall()),
    }


def _units(con: duckdb.DuckDBPyConnection, rows: str, params: dict[str, Any]) -> dict[str, int]:
    sql = f"select supply_kind::varchar, sum(qty)::bigint from allocation_rows {rows} group by all"
    return {k: int(v) for k, v in con.execute(sql, params).fetchall()}


def _summary_counts(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    run_no: int,
    full: bool,
    replaced: tuple[Counts, Counts] | None,
) -> Counts:
    """The run's line and unit counts: counted whole, or the previous run's plus the change.

    An incremental run replaced the line results of some skus (`replaced`: their old and
    new counts) and closed and wrote their allocation rows: the rest is as the previous
    run counted it (allocation_runs.summary_counts), unless that is unknown.
    """
    prev = store.scalar(
        con,
        "select summary_counts from allocation_runs where run_no < $n order by run_no desc limit 1",
        {"n": run_no},
    )
    if full or prev is None:
        # the table behind the line_status view: counting needs none of the view's joins;
        # the run's rows (allocations view) straight from allocation_rows: its epoch's
        # rows from the base run on that no later run up to this one replaced
        counts = _line_counts(con, "line_results")
        counts["units"] = _units(
            con,
            ", (select run_no, coalesce(base_run_no, run_no) as base from allocation_runs "
            "where run_id = $r) as r where allocation_rows.run_no between r.base and r.run_no "
            "and (run_to is null or run_to > r.run_no)",
            {"r": run_id},
        )
        return counts
    counts = json.loads(prev)
    old, new = replaced or ({"status": {}, "weeks": {}}, {"status": {}, "weeks": {}})
    gone = _units(con, "where run_to = $n", {"n": run_no})
    added = _units(con, "where run_no = $n", {"n": run_no})
    for part, minus, plus in (
        ("status", old["status"], new["status"]),
        ("weeks", old["weeks"], new["weeks"]),
        ("units", gone, added),
    ):
        now = counts[part]
        for k in {*minus, *plus}:
            now[k] = now.get(k, 0) - minus.get(k, 0) + plus.get(k, 0)
        counts[part] = {k: n for k, n in now.items() if n}
    return counts


def summarize(con: duckdb.DuckDBPyConnection, run_id: str, counts: Counts) -> dict[str, Any]:
    """Counts by line status, units by supply kind, promised lines by week, promise changes."""
    changes = dict(
        con.execute(
            "select change, count(*) from promise_changes where run_id = $r group by all order by 1",
            {"r": run_id},
        ).fetchall()
    )
    return {
        "lines_by_status": dict(sorted(counts["status"].items())),
        "units_allocated_from_stock": int(counts["units"].get("stock", 0)),
        "units_promised_from_po": int(counts["units"].get("po", 0)),
        "promised_lines_by_week": sorted((str(w), int(n)) for w, n in counts["weeks"].items()),
        "promise_changes": changes,
    }
