"""Allocation benchmark: set-based DuckDB allocation against a line-by-line ERP-style loop.

    uv run python benchmarks/allocation.py --lines 1000000 --skus 20000 --skew zipf --seed 1

Generates N open order lines and about 0.3*N supply lots (stock per sku, then PO
lines) straight into a DuckDB file, times the allocation step as the pipeline runs
it (reconcile marts + allocation + line status + promise changes + audit digest),
then the same allocation done line by line with a query per line on 10,000 lines
(the classic ERP pattern), and optionally the whole Prefect flow on the same data
written as Parquet feeds (--cycle), a stripped allocation that does less than the
real one, a lower bound for it on this machine (--floor, see floor_steps), and the ops
rerun after a supplier is late (--rerun), or the hourly rerun after a fraction F of the
skus changed (--changed-skus F: a settling run first, then the change and the default
incremental run; rerun_seconds and its ratio to the first run's alloc_seconds).
Prints one JSON line. Not a test: figures only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/email.py (the email benchmark) would shadow the standard library's
# `email` package, which DuckDB's import needs: keep this folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import json
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# as the CLI does: room for a cold temporary Prefect server, no telemetry
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from backorders.adapters import allocation_store, store
from backorders.domain.priority import order_by_sql
from backorders.settings import Settings, load_settings

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def _sku_expr(i: str, salt: int, skew: str) -> str:
    """SQL for a deterministic sku index of row i: uniform, or Zipf-like (density ~ 1/rank)."""
    u = f"((hash({i}, {salt}) % 1000000007) / 1000000007.0)"
    if skew == "uniform":
        return f"(hash({i}, {salt} + 1) % $k)"
    return f"least($k - 1, floor(exp({u} * ln($k)))::bigint - 1)"


def generate(
    con: duckdb.DuckDBPyConnection, *, lines: int, skus: int, skew: str, seed: int
) -> dict[str, int]:
    """Fill customers, products, orders, order_lines, stock and purchase_orders."""
    c = con
    n_orders = max(1, lines // 2)
    n_customers = max(1, lines // 20)
    n_po = max(1, int(0.3 * lines) - skus)
    c.execute(
        "insert into customers (customer_id, email, name, tier, "
        "locale, email_opt_in, updated_at, source_sha256) "
        "select 'C' || i, 'c' || i || '@shop.test', null, "
        "(['platinum', 'gold', 'silver', 'standard'])[(1 + hash(i, $s) % 4)::bigint], 'en-US', true, "
        "$as_of::timestamptz - interval 400 day, 'bench' from range($c) t(i)",
        {"c": n_customers, "s": seed, "as_of": AS_OF},
    )
    c.execute(
        "insert into products (sku, name, status, backorderable, max_backorder_qty, "
        "safety_stock, lead_time_days, substitute_skus, updated_at, source_sha256) "
        "select 'S' || lpad(i::varchar, 8, '0'), null, 'active', true, null, "
        "hash(i, $s) % 3, 14, [], $as_of::timestamptz - interval 300 day, 'bench' from range($k) t(i)",
        {"k": skus, "s": seed, "as_of": AS_OF},
    )
    c.execute(
        "insert into orders (order_id, customer_id, placed_at, status, "
        "ship_complete, priority, currency, updated_at, source_sha256) "
        "select 'O' || lpad(i::varchar, 9, '0'), 'C' || (hash(i, $s) % $c), "
        "$as_of::timestamptz - (hash(i, $s + 2) % (60 * 86400)) * interval 1 second, 'open', false, "
        "case when hash(i, $s + 3) % 50 = 0 then 1 else 0 end, 'USD', "
        "$as_of::timestamptz - interval 1 hour, 'bench' from range($o) t(i)",
        {"o": n_orders, "c": n_customers, "s": seed, "as_of": AS_OF},
    )
    c.execute(
        "insert into order_lines (order_id, line_no, sku, qty, "
        "unit_price, status, updated_at, source_sha256) "
        f"select 'O' || lpad((i // 2)::varchar, 9, '0'), i % 2 + 1, "
        f"'S' || lpad({_sku_expr('i', seed + 10, skew)}::varchar, 8, '0'), 1 + hash(i, $s + 4) % 5, "
        "(5 + hash(i, $s + 5) % 200)::decimal(18, 2), 'open', $as_of::timestamptz - interval 1 hour, "
        "'bench' from range(2 * $o) t(i) where i < $n",
        {"o": n_orders, "n": lines, "k": skus, "s": seed, "as_of": AS_OF},
    )
    c.execute(
        "insert into stock select 'WH-1', sku, greatest(0, (sum(qty) * (hash(sku, $s) % 40) / 100)::bigint), "
        "$as_of::timestamptz - interval 2 hour, 'bench' from order_lines group by sku",
        {"s": seed, "as_of": AS_OF},
    )
    c.execute(
        f"insert into purchase_orders select 'P' || lpad(i::varchar, 9, '0'), 1, "
        f"'SUP-' || (hash(i, $s) % 20), 'S' || lpad({_sku_expr('i', seed + 20, skew)}::varchar, 8, '0'), "
        "1 + hash(i, $s + 6) % 6, 'WH-1', "
        "($as_of::timestamptz::date + (1 + hash(i, $s + 7) % 60)::integer), 'open', "
        "$as_of::timestamptz - interval 3 hour, null, 'bench', null, null from range($m) t(i)",
        {"m": n_po, "k": skus, "s": seed, "as_of": AS_OF},
    )
    # the links the feeds' MERGE looks up at ingest (an order's customer, a line's order
    # and sku: migration 010), looked up here as ingest would, not in the timed allocation
    allocation_store.link_keys(con)
    return {"orders": n_orders, "customers": n_customers, "stock_lots": skus, "po_lots": n_po}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def loop_allocate(con: duckdb.DuckDBPyConnection, *, limit: int) -> float:
    """Allocate `limit` lines one at a time, a query per lot touched (the ERP way); lines/s."""
    c = con
    c.execute(
        "create or replace temp table loop_lots as select row_number() over () as id, sku, "
        "supply_kind, supply_ref, qty as remaining, "
        "row_number() over (partition by sku order by supply_kind <> 'stock', available_on, supply_ref) as seq "
        "from supply_lots where usable and qty > 0"
    )
    # the ERP has indexes for its point queries: give the loop the same
    c.execute("create index loop_lots_sku on loop_lots (sku, seq)")
    c.execute("create unique index loop_lots_id on loop_lots (id)")
    c.execute(
        "create or replace temp table loop_alloc (order_id varchar, line_no bigint, lot bigint, qty bigint)"
    )
    todo = c.execute(
        "select order_id, line_no, sku, qty_open from demand_lines "
        "order by sku, priority_rank limit $l",
        {"l": limit},
    ).fetchall()
    t = time.perf_counter()
    for order_id, line_no, sku, need in todo:
        while need > 0:
            lot = c.execute(
                "select id, remaining from loop_lots where sku = $s and remaining > 0 order by seq limit 1",
                {"s": sku},
            ).fetchone()
            if lot is None:
                break
            take = min(need, lot[1])
            c.execute(
                "update loop_lots set remaining = remaining - $q where id = $i",
                {"q": take, "i": lot[0]},
            )
            c.execute(
                "insert into loop_alloc values ($o, $l, $i, $q)",
                {"o": order_id, "l": line_no, "i": lot[0], "q": take},
            )
            need -= take
    return len(todo) / (time.perf_counter() - t)


def floor_steps(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, float]:
    """Time a stripped allocation that does less than the real one: a lower bound, seconds per step.

    Each step is the least the issue's allocation must do on these lines, written as
    narrow, set-based DuckDB SQL: the priority facts per order (fixed-width, the order
    id's tie-break as its position), ONE window per sku (rank + one running sum), each
    line's stock and PO share in closed form written as line results, one allocation
    row per line and source, and a first run's promise changes (every line new). Left
    out, so the real step must cost more: ship-complete holds, backorder limits,
    committed lines, closed lines, the lot that completes a line and its date, lines
    drawing several lots, the reasons, the summary and the audit digest.
    """
    c, out = con, dict[str, float]()
    with_value = "order_value" in settings.priority_key
    # the allocation's own key (domain.priority.order_by_sql), on fixed-width columns:
    # the order value in cents, and as order_id the id's position among the orders
    key = order_by_sql(settings.priority_key)

    def step(name: str, sql: str, params: dict[str, object] | None = None) -> None:
        t = time.perf_counter()
        c.execute(sql, params or {})
        out[name] = round(time.perf_counter() - t, 2)

    c.execute("begin")
    step(
        "order_facts",
        "create temp table _floor_orders as select o.order_key, o.priority as order_priority, "
        "coalesce(list_position($tiers, c.tier), len($tiers) + 1) as tier_rank, o.placed_at, "
        + ("coalesce(v.cents, 0)" if with_value else "0")
        + " as order_value, row_number() over (order by o.order_id) as order_id "
        "from orders as o left join customers as c on c.customer_key = o.customer_key "
        + (
            "left join (select order_key, (sum(qty * unit_price) * 100)::bigint as cents "
            "from order_lines where status <> 'cancelled' group by all) as v "
            "on v.order_key = o.order_key "
            if with_value
            else ""
        )
        + "where o.status = 'open'",
        {"tiers": settings.tiers},
    )
    step(
        "rank",
        "create temp table _floor_rank as select line_key, sku_key, qty, "
        "row_number() over w as priority_rank, sum(qty) over w as upto "
        "from (select ol.line_key, ol.sku_key, ol.qty, ol.line_no, f.* exclude (order_key) "
        "from order_lines as ol join _floor_orders as f on f.order_key = ol.order_key "
        f"where ol.status = 'open') window w as (partition by sku_key order by {key})",
    )
    step(
        "shares_write_line_results",
        "create table _floor_results as with sku as ("
        "select p.sku_key, coalesce(sum(s.qty) filter (where s.supply_kind = 'stock'), 0) as stock, "
        "coalesce(sum(s.qty) filter (where s.supply_kind = 'po'), 0) as po "
        "from supply_lots as s join products as p using (sku) where s.usable group by all), "
        "shares as (select r.line_key, r.priority_rank, r.qty, "
        "least(r.qty, greatest(0, k.stock - (r.upto - r.qty)))::bigint as qty_allocated, "
        "greatest(0, r.upto - r.qty - k.stock) as need_before, k.po "
        "from _floor_rank as r join sku as k using (sku_key)) "
        "select line_key, priority_rank, qty, qty_allocated, "
        "least(qty - qty_allocated, greatest(0, po - need_before))::bigint as qty_promised, "
        "case when qty_allocated = qty then 1 when qty_allocated + "
        "least(qty - qty_allocated, greatest(0, po - need_before)) = qty then 2 else 3 end::tinyint "
        "as status from shares",
    )
    step(
        "write_allocation_rows",
        "create table _floor_rows as select line_key, 1::tinyint as kind, qty_allocated as qty "
        "from _floor_results where qty_allocated > 0 union all "
        "select line_key, 2::tinyint, qty_promised from _floor_results where qty_promised > 0",
    )
    step(
        "write_promise_changes",
        "create table _floor_changes as select ol.order_id, ol.line_no, 'new' as change, "
        "r.status from _floor_results as r join order_lines as ol using (line_key)",
    )
    step("commit", "commit")
    # not timed: on this generated data (no ship-complete order, no limit, no committed
    # or closed line) the stripped allocation must give every line the real one's rank
    # and shares, or it is not a floor of the same work
    row = c.execute(
        "select count(*) from _floor_results as f full join line_results as r using (line_key) "
        "where r.status in ('cancelled', 'shipped') is not true and ("
        "f.line_key is null or r.line_key is null or f.priority_rank <> r.priority_rank "
        "or f.qty_allocated <> r.qty_allocated or f.qty_promised <> r.qty_promised)"
    ).fetchone()
    out["lines_differing_from_allocate"] = row[0] if row else -1
    for t in ("_floor_orders", "_floor_rank", "_floor_results", "_floor_rows", "_floor_changes"):
        c.execute(f"drop table {t}")
    c.execute("checkpoint")
    return out


def rerun(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, object]:
    """The ops rerun: a supplier is late on every tenth PO line (14 days); allocate again."""
    con.execute(
        "insert into supplier_updates (supplier_id, po_id, line_no, expected_at, "
        "qty_confirmed, reason, reported_at, source_sha256) "
        "select supplier_id, po_id, line_no, expected_at + 14, null, 'bench: late', "
        "$as_of::timestamptz - interval 30 minute, 'bench' from purchase_orders "
        "where hash(po_id, line_no) % 10 = 0",
        {"as_of": AS_OF},
    )
    run = timed_run(con, settings, "bench-rerun", now=AS_OF)
    return {
        "rerun_seconds": run["seconds"],
        "rerun_steps": run["steps"],
        "rerun_promise_changes": run["promise_changes"],
    }


# the share of the changed skus that get each kind of change (by a hash of the sku)
_CHANGES = ("supplier delay", "new order", "shipment")


def change_skus(con: duckdb.DuckDBPyConnection, fraction: float, *, now: datetime) -> int:
    """Change the inputs of about `fraction` of the skus, a third each: a supplier 7 days
    late on its PO lines, a new one-line order, a shipment of one unit of an open line.

    Rows are written with their keys, as the feeds' MERGE writes them (no hand-inserted
    rows for the allocation's key check to number). Returns the number of skus changed.
    """
    c = con
    c.execute(
        "create or replace temp table _changed as select sku, sku_key, "
        "hash(sku, 'kind') % 3 as kind from products "
        "where hash(sku, 'changed') % 1000000 < $f * 1000000",
        {"f": fraction},
    )
    c.execute(
        "insert into supplier_updates (supplier_id, po_id, line_no, expected_at, "
        "qty_confirmed, reason, reported_at, source_sha256) "
        "select po.supplier_id, po.po_id, po.line_no, po.expected_at + 7, null, 'bench: late', "
        "$now::timestamptz - interval 10 minute, 'bench' from purchase_orders as po "
        "join _changed as k using (sku) where k.kind = 0 and po.status = 'open'",
        {"now": now},
    )
    c.execute(
        "create or replace temp table _new as select k.sku, k.sku_key, "
        "row_number() over (order by k.sku) as n from _changed as k where k.kind = 1"
    )
    c.execute(
        "insert into orders (order_id, customer_id, placed_at, status, ship_complete, priority, "
        "currency, updated_at, source_sha256, order_key, customer_key) "
        "select 'BENCH-' || n, cu.customer_id, $now::timestamptz - interval 20 minute, 'open', "
        "false, 0, 'USD', $now::timestamptz - interval 20 minute, 'bench', "
        "(select max(order_key) from orders) + n, cu.customer_key "
        "from _new join customers as cu on cu.customer_id = 'C' || (n % 1000)",
        {"now": now},
    )
    c.execute(
        "insert into order_lines (order_id, line_no, sku, qty, unit_price, status, updated_at, "
        "source_sha256, line_key, order_key, sku_key) "
        "select o.order_id, 1, x.sku, 2, 25.00, 'open', o.updated_at, 'bench', "
        "(select max(line_key) from order_lines) + x.n, o.order_key, x.sku_key "
        "from _new as x join orders as o on o.order_id = 'BENCH-' || x.n"
    )
    c.execute(
        "insert into shipments select 'BENCH-SH-' || ol.line_key, ol.order_id, ol.line_no, "
        "ol.sku, 1, 'WH-1', $now::timestamptz - interval 15 minute, 'bench' "
        "from (select sku, min(line_key) as line_key from order_lines "
        "where status = 'open' and sku in (select sku from _changed where kind = 2) "
        "group by sku) as f join order_lines as ol using (line_key)",
        {"now": now},
    )
    changed = int(store.scalar(c, "select count(*) from _changed") or 0)
    c.execute("drop table _changed")
    c.execute("drop table _new")
    return changed


def timed_run(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, *, now: datetime
) -> dict[str, object]:
    """Reconcile and allocate as the pipeline's default (incremental) run: seconds and plan."""
    t = time.perf_counter()
    position = allocation_store.reconcile(con, as_of=now, settings=settings)
    reconcile_s = time.perf_counter() - t
    steps: dict[str, float] = {}
    summary = allocation_store.allocate(
        con, run_id=run_id, as_of=now, settings=settings, now=now, timings=steps
    )
    plan = summary["plan"]
    return {
        "seconds": round(time.perf_counter() - t, 2),
        "reconcile_seconds": round(reconcile_s, 2),
        "skus_rebuilt_by_reconcile": position.skus_rebuilt,
        "mode": plan["mode"],
        "why": plan["why"],
        "skus_reallocated": plan["skus_reallocated"],
        "by_trigger": {k: n for k, n in plan["by_trigger"].items() if n},
        "promise_changes": summary["promise_changes"],
        "steps": steps,
    }


def changed_rerun(
    con: duckdb.DuckDBPyConnection, settings: Settings, fraction: float, alloc_s: float
) -> dict[str, object]:
    """The hourly rerun: settle once, change `fraction` of the skus, rerun; figures."""
    # With keep_committed the run after the first redoes the skus whose allocated lines
    # the first run changed (here: nearly all, so a full run): measured apart, not as F.
    settle = timed_run(con, settings, "bench-settle", now=AS_OF + timedelta(minutes=30))
    rerun_at = AS_OF + timedelta(hours=1)
    t = time.perf_counter()
    changed = change_skus(con, fraction, now=rerun_at) if fraction else 0
    change_s = time.perf_counter() - t
    rerun = timed_run(con, settings, "bench-rerun", now=rerun_at)
    seconds = float(rerun.pop("seconds"))  # type: ignore[arg-type]
    return {
        "changed_skus_fraction": fraction,
        "skus_changed": changed,
        "change_seconds": round(change_s, 2),
        "settle": settle,
        "rerun_seconds": seconds,
        "rerun_ratio_to_alloc": round(seconds / alloc_s, 3),
        "rerun": rerun,
    }


def write_feeds(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    """Write the generated tables as Parquet feeds of a landing zone."""
    for feed, cols in {
        "customers": "customer_id, email, name, tier, locale, email_opt_in, updated_at",
        "products": "sku, name, status, backorderable, max_backorder_qty, safety_stock, lead_time_days, substitute_skus, updated_at",
        "orders": "order_id, customer_id, placed_at, status, ship_complete, priority, currency, updated_at",
        "order_lines": "order_id, line_no, sku, qty, unit_price, status, updated_at",
        "stock": "location_id, sku, on_hand, as_of",
        "purchase_orders": "po_id, line_no, supplier_id, sku, qty, location_id, expected_at, status, updated_at",
    }.items():
        (landing / feed).mkdir(parents=True, exist_ok=True)
        con.execute(
            f"copy (select {cols} from {feed}) to '{landing / feed / 'bench.parquet'}' (format parquet)"
        )


def main() -> None:
    """Run the benchmark and print one JSON line."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--skus", type=int, default=20_000)
    ap.add_argument("--skew", choices=["uniform", "zipf"], default="uniform")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--loop-lines", type=int, default=10_000)
    ap.add_argument(
        "--cycle", action="store_true", help="also time the whole flow on the same data"
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also time a stripped allocation on the same data (a lower bound: see floor_steps)",
    )
    ap.add_argument(
        "--rerun",
        action="store_true",
        help="then time the ops rerun: every tenth PO line 14 days late, allocate again",
    )
    ap.add_argument(
        "--changed-skus",
        type=float,
        metavar="F",
        help="then time the hourly rerun: a settling run, the inputs of a fraction F of the "
        "skus changed (supplier delays, new orders, shipments), the default incremental run",
    )
    ap.add_argument("--dir", type=Path, help="work folder (default: a temp folder)")
    args = ap.parse_args()
    if args.rerun and args.changed_skus is not None:
        ap.error("--rerun and --changed-skus change the same data: take one")
    if args.changed_skus is not None and not 0 <= args.changed_skus <= 1:
        ap.error("--changed-skus: a fraction from 0 to 1")

    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-alloc-"))
    if (work / "bench.duckdb").exists():
        ap.error(
            f"{work / 'bench.duckdb'} exists (an earlier run's): remove it or take another --dir"
        )
    settings = load_settings(db=work / "bench.duckdb", landing=work / "landing")
    con = store.connect(settings.db)
    t = time.perf_counter()
    shape = generate(con, lines=args.lines, skus=args.skus, skew=args.skew, seed=args.seed)
    gen_s = time.perf_counter() - t

    cpu0 = _cpu_seconds()
    t = time.perf_counter()
    allocation_store.reconcile(con, as_of=AS_OF, settings=settings)
    reconcile_s = time.perf_counter() - t
    t = time.perf_counter()
    steps: dict[str, float] = {}
    summary = allocation_store.allocate(
        con, run_id="bench", as_of=AS_OF, settings=settings, now=AS_OF, timings=steps
    )
    allocate_s = time.perf_counter() - t
    alloc_cpu_s = _cpu_seconds() - cpu0
    rss_alloc = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if args.floor:
        floor = floor_steps(con, settings)
        # reconcile is part of both: the supply the shares draw from
        floor_total = round(
            reconcile_s + sum(v for k, v in floor.items() if k != "lines_differing_from_allocate"),
            2,
        )
        floor_result: dict[str, object] = {"floor_steps": floor, "floor_seconds": floor_total}
    loop_rate = loop_allocate(con, limit=args.loop_lines) if args.loop_lines else float("nan")
    # last: the floor compares with the first run's results, the loop ran on its supply
    rerun_result = rerun(con, settings) if args.rerun else {}
    alloc_s = reconcile_s + allocate_s
    if args.changed_skus is not None:
        rerun_result = changed_rerun(con, settings, args.changed_skus, alloc_s)
    result: dict[str, object] = {
        "lines": args.lines,
        "skus": args.skus,
        "skew": args.skew,
        "seed": args.seed,
        **shape,
        "generate_seconds": round(gen_s, 2),
        "reconcile_seconds": round(reconcile_s, 2),
        "allocate_seconds": round(allocate_s, 2),
        "alloc_seconds": round(alloc_s, 2),
        # CPU seconds of both cores together: steadier than wall time on a shared
        # machine (wall >= cpu / 2 on 2 cores)
        "alloc_cpu_seconds": round(alloc_cpu_s, 1),
        "peak_rss_mb": round(rss_alloc),
        "loop_lines_per_s": round(loop_rate, 1),
        "lines_per_s": round(args.lines / alloc_s),
        "speedup": round(args.lines / alloc_s / loop_rate) if args.loop_lines else None,
        "allocate_steps": steps,
        "units_from_stock": summary["units_allocated_from_stock"],
        "units_from_po": summary["units_promised_from_po"],
    }
    if args.floor:
        result.update(floor_result)
    result.update(rerun_result)
    if args.cycle:
        write_feeds(con, settings.landing)
        con.close()
        from flows.backorder_cycle import backorder_cycle

        cycle_db = work / "cycle.duckdb"
        t = time.perf_counter()
        backorder_cycle(landing=str(settings.landing), db=str(cycle_db), as_of=AS_OF, dry_run=True)
        result["cycle_seconds"] = round(time.perf_counter() - t, 1)
        result["peak_rss_mb_with_cycle"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
