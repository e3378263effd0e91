"""Payments benchmark: the queue step on N authorized orders, and sending against the local server.

    uv run python benchmarks/payments.py --orders 1000000 --send 400 --latency-ms 150 --concurrency 4

Writes N orders with a Stripe authorization and two lines each straight into a DuckDB
file, with line results where about 40 % of the orders have all their stock, 10 % are
all cancelled and the rest wait; times the queue step as the stage runs it
(sql/payments/new_requests.sql, the inserts and one audit row per request), then a
rerun (nothing new), then sends SEND of the queued captures through the `stripe` package
to the local Stripe server. Prints one JSON line. Not a test: figures only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/email.py would shadow the standard library's `email`: keep this folder off
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta

import duckdb

from backorders.adapters import allocation_store, payment_queue, payment_send, store
from backorders.adapters.stripe_sender import StripeSender
from backorders.devtools.stripe_server import FakeStripe

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
KEY = "sk_test_benchmark_0000000000000000"


def build(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """N orders (authorized for their value), 2 lines each, and their line results."""
    con.execute(
        "insert into orders (order_id, customer_id, placed_at, status, ship_complete, priority, "
        "currency, updated_at, source_sha256, payment_provider, payment_ref, payment_amount, "
        "payment_currency, payment_expires_at) select 'O' || i, 'C' || (i % 1000), $t, 'open', "
        "false, 0, 'USD', $t, 'b', 'stripe', 'pi_b' || i, 4000, null, $exp from range($n) t(i)",
        {"n": n, "t": NOW - timedelta(days=1), "exp": NOW + timedelta(days=6)},
    )
    con.execute(
        "insert into order_lines (order_id, line_no, sku, qty, unit_price, status, updated_at, "
        "source_sha256) select 'O' || i, l, 'SKU-' || (i % 500), 1, 20.00, 'open', $t, 'b' "
        "from range($n) t(i), range(1, 3) u(l)",
        {"n": n, "t": NOW - timedelta(days=1)},
    )
    allocation_store.link_keys(con)
    con.execute(
        "insert into line_results (line_key, qty_ordered, qty_shipped, qty_allocated, "
        "qty_promised, qty_unpromised, promised_date, status, priority_rank) "
        "select ol.line_key, 1, 0, case when s = 'allocated' then 1 else 0 end, "
        "case when s = 'promised' then 1 else 0 end, 0, null, s::line_state, 1 "
        "from (select line_key, case when hash(order_id) % 10 < 4 then 'allocated' "
        "when hash(order_id) % 10 = 4 then 'cancelled' "
        "when line_no = 1 then 'allocated' else 'promised' end as s from order_lines) as ol"
    )
    con.execute("insert into line_results_run values ('bench')")


def main() -> int:
    """Run the benchmark; print one JSON line."""
    p = argparse.ArgumentParser()
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--send", type=int, default=200)
    p.add_argument("--latency-ms", type=float, default=150.0)
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args()
    out: dict[str, object] = {"orders": args.orders}
    with tempfile.TemporaryDirectory() as tmp, store.connect(Path(tmp) / "b.duckdb") as con:
        build(con, args.orders)
        for name in ("queue_s", "rerun_s"):
            t = time.perf_counter()
            q = payment_queue.queue_requests(
                con,
                run_id=name,
                now=NOW,
                dry_run=False,
                multicapture=False,
                authorization_days=7,
            )
            out[name] = round(time.perf_counter() - t, 2)
            out[name.replace("_s", "_requests")] = q.captures + q.releases
        con.execute(
            "update payment_requests set status = 'preview' where rowid not in "
            "(select rowid from payment_requests where kind = 'capture' limit $n)",
            {"n": args.send},
        )
        with FakeStripe(api_key=KEY, latency_s=args.latency_ms / 1000) as fake:
            for (ref,) in con.execute(
                "select payment_ref from payment_requests where status = 'pending'"
            ).fetchall():
                fake.add_intent(ref, 4000)
            t = time.perf_counter()
            r = payment_send.send_pending(
                con,
                StripeSender(api_key=KEY, api_base=fake.url),
                run_id="send",
                now=lambda: NOW,
                concurrency=args.concurrency,
                progress=lambda s: None,
            )
            took = time.perf_counter() - t
        out.update(
            sent=r.succeeded,
            send_s=round(took, 2),
            per_s=round(r.succeeded / took, 1),
            latency_ms=args.latency_ms,
            concurrency=args.concurrency,
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
