"""Queueing benchmark: the communicate stage's queue step (outbox.queue_messages) at scale.

    uv run python benchmarks/outbox_queue.py --lines 1000000
    uv run python benchmarks/outbox_queue.py --lines 10000000 --memory-limit 3GB

Generates a world of N order lines as allocation leaves it (line_status, orders,
customers, products, supply_lots; 2 lines per order on average, 10 orders per customer,
four locales, names with non-ASCII and HTML-special characters, 2 % opted out, 1 %
undeliverable addresses, discontinued products with in-stock substitutes) straight into
a DuckDB file, then times queue_messages on it: a first run (every backordered order
gets news), then with --rerun a second run after 5 % of the promised dates moved. Prints
one JSON line per run. Not a test: figures only (docs/performance.md, "Queueing emails").
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
import re
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta

import duckdb

sys.path.insert(0, str(_HERE.parent))

from backorders.adapters import allocation_store, outbox, store
from backorders.domain.messages import Policy

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
_NAMES = ["Ann Smith", "Zoë Müller", "Ben & Jerry's", "<b>Bold</b> Ltd", "François Dupont", ""]
_LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "en-US"]


def generate(con: duckdb.DuckDBPyConnection, *, lines: int, seed: int) -> dict[str, int]:
    """Fill customers, products, orders, line_status and supply_lots with about `lines` lines."""
    n_orders = max(1, lines // 2)
    n_customers = max(1, lines // 20)
    n_skus = max(10, lines // 50)
    p = {"s": seed, "as_of": AS_OF}
    con.execute(
        "insert into customers (customer_id, email, name, tier, "
        "locale, email_opt_in, updated_at, source_sha256) "
        "select 'C' || i, "
        "case when hash(i, $s) % 100 = 0 then 'c' || i || '@invalid' else 'c' || i || '@shop.test' end, "
        "case when hash(i, $s + 1) % 7 = 0 then null else $names[(1 + hash(i, $s + 2) % 6)::bigint] || ' ' || i end, "
        "'standard', $locales[(1 + hash(i, $s + 3) % 5)::bigint], hash(i, $s + 4) % 50 <> 0, "
        "$as_of::timestamptz - interval 400 day, 'bench' from range($c) t(i)",
        {**p, "c": n_customers, "names": _NAMES, "locales": _LOCALES},
    )
    con.execute(
        "insert into products (sku, name, status, backorderable, max_backorder_qty, "
        "safety_stock, lead_time_days, substitute_skus, updated_at, source_sha256) "
        "select 'S' || lpad(i::varchar, 8, '0'), "
        "case when i % 10 = 0 then 'Gadget \"' || i || '\" & case' else 'Widget ' || i end, "
        "case when hash(i, $s) % 50 = 0 then 'discontinued' else 'active' end, "
        "hash(i, $s) % 50 <> 0, null, 0, 14, "
        "case when hash(i, $s) % 50 = 0 then ['S' || lpad(((i + 1) % $k)::varchar, 8, '0'), "
        "'S' || lpad(((i + 7) % $k)::varchar, 8, '0')] else [] end, "
        "$as_of::timestamptz - interval 300 day, 'bench' from range($k) t(i)",
        {**p, "k": n_skus},
    )
    con.execute(
        "insert into orders (order_id, customer_id, placed_at, status, "
        "ship_complete, priority, currency, updated_at, source_sha256) "
        "select 'O' || lpad(i::varchar, 9, '0'), 'C' || (hash(i, $s) % $c), "
        "$as_of::timestamptz - (hash(i, $s + 2) % (60 * 86400)) * interval 1 second, 'open', "
        "false, 0, 'USD', $as_of::timestamptz - interval 1 hour, 'bench' from range($o) t(i)",
        {**p, "o": n_orders, "c": n_customers},
    )
    # 1 to 3 lines per order; status as the 1M-line allocation benchmark leaves them
    # (18 % allocated, 33 % promised within 60 days, 49 % unpromised), not backorderable
    # where the product is discontinued
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, unit_price, status, updated_at, "
        "source_sha256) "
        "select 'O' || lpad(o::varchar, 9, '0'), n + 1, "
        "'S' || lpad((hash(o, n, $s + 5) % $k)::varchar, 8, '0'), 1 + hash(o, n, $s + 6) % 4, "
        "9.99, 'open', $as_of::timestamptz - interval 1 hour, 'bench' "
        "from range($o) t(o), range(3) u(n) where n <= hash(o, $s + 7) % 3",
        {**p, "o": n_orders, "k": n_skus},
    )
    # the links ingest looks up (migration 010): a line's order and sku
    allocation_store.link_keys(con)
    con.execute(
        # line_status is a view: the rows go into the table behind it (migrations 007, 010)
        "insert into line_results (line_key, qty_ordered, qty_shipped, qty_allocated, "
        "qty_promised, qty_unpromised, promised_date, status, priority_rank, note) "
        "with l as (select line_key, order_id, line_no, qty, "
        "substr(sku, 2)::bigint as sku_no, hash(order_id, line_no, $s + 6) % 100 as r "
        "from order_lines) "
        "select line_key, qty as qty_ordered, 0 as qty_shipped, 0 as qty_allocated, "
        "0 as qty_promised, 0 as qty_unpromised, "
        "case when hash(sku_no, $s) % 50 <> 0 and r >= 18 and r < 51 "
        "then $as_of::date + (1 + hash(order_id, line_no) % 60)::integer "
        "when hash(sku_no, $s) % 50 <> 0 and r < 18 then $as_of::date + 1 end as promised_date, "
        "case when hash(sku_no, $s) % 50 = 0 then 'not_backorderable' when r < 18 then 'allocated' "
        "when r < 51 then 'promised' else 'unpromised' end as status, "
        "null as priority_rank, null as note from l",
        p,
    )
    con.execute(
        "create or replace table supply_lots as select 'S' || lpad(i::varchar, 8, '0') as sku, "
        "'stock' as supply_kind, 'WH-1' as supply_ref, (hash(i, $s) % 5)::hugeint as qty, "
        "(hash(i, $s) % 5)::hugeint as qty_before_safety, $as_of::date as available_on, "
        "true as usable, null as note from range($k) t(i)",
        {**p, "k": n_skus},
    )
    con.execute("insert into line_results_run values ('bench')")
    n_lines = store.scalar(con, "select count(*) from line_status")
    return {"lines": int(n_lines), "orders": n_orders, "customers": n_customers, "skus": n_skus}


def move_dates(con: duckdb.DuckDBPyConnection, *, seed: int) -> None:
    """A later run: 5 % of the promised lines slip by 3 to 20 days."""
    con.execute(
        "update line_results set promised_date = promised_date + (3 + hash(line_key, $s) % 18)::integer "
        "where status = 'promised' and hash(line_key, $s + 1) % 20 = 0",
        {"s": seed},
    )


def timed_queue(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> dict[str, object]:
    """Run queue_messages as the pipeline does (not a dry run: pending and suppressed messages)."""
    t = time.perf_counter()
    q = outbox.queue_messages(
        con,
        run_id=run_id,
        now=now,
        dry_run=False,
        policy=Policy(delay_apology_days=14, max_wait_days=90),
    )
    seconds = time.perf_counter() - t
    messages = q.queued + q.suppressed
    return {
        "run": run_id,
        "messages": messages,
        "queued": q.queued,
        "suppressed": q.suppressed,
        "emails": q.emails,
        "by_kind": q.by_kind,
        "seconds": round(seconds, 2),
        "messages_per_s": round(messages / seconds) if seconds else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    """Generate the world, queue once (and again with --rerun), print one JSON line per run."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 3GB (default: DuckDB's)")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: one per core)")
    ap.add_argument("--rerun", action="store_true", help="also queue a second run after changes")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temp folder)")
    args = ap.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-queue-"))
    con = store.connect(work / "bench.duckdb")
    if args.memory_limit:
        if not re.fullmatch(r"\d+(\.\d+)?[KMGT]i?B", args.memory_limit):
            ap.error("--memory-limit: a size such as 3GB")
        con.execute(f"set memory_limit = '{args.memory_limit}'")
    if args.threads:
        con.execute(f"set threads = {int(args.threads)}")
    t = time.perf_counter()
    shape = generate(con, lines=args.lines, seed=args.seed)
    con.execute("checkpoint")
    generated = round(time.perf_counter() - t, 1)
    first = timed_queue(con, "bench-1", AS_OF)
    print(json.dumps({**shape, "generate_seconds": generated, **first}), flush=True)
    if args.rerun:
        move_dates(con, seed=args.seed)
        con.execute("checkpoint")
        second = timed_queue(con, "bench-2", AS_OF + timedelta(days=1))
        print(json.dumps({**shape, **second}), flush=True)


if __name__ == "__main__":
    main()
