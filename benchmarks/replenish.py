"""Replenishment benchmark: the cost of the replenish stage after an allocation.

    uv run python benchmarks/replenish.py --lines 1000000 --skus 20000

Builds the allocation benchmark's data (benchmarks/allocation.py `generate`: N open order
lines, stock per sku, open PO lines), marks a share of the PO lines received after a
measured lead time (so that lead times are measured, not only read from the products),
reconciles and allocates as a run does (not timed), then times the replenish stage: the
set-based SQL (demand, lead times, positions), the pure core applied to each sku and
location in Python, and the write of replenishment_advice. Prints one JSON line. Not a
test: figures only (docs/replenishment.md, docs/performance.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/email.py would shadow the standard library's `email` (as in allocation.py)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import importlib.util
import json
import resource
import tempfile
import time

sys.path.insert(0, str(_HERE.parent))

from backorders.adapters import allocation_store, replenish, store
from backorders.settings import load_settings


def _allocation_benchmark() -> object:
    """benchmarks/allocation.py as a module (its data generator is reused, not copied)."""
    spec = importlib.util.spec_from_file_location("bench_allocation", _HERE / "allocation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Run the benchmark and print one JSON line."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--skus", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--received", type=float, default=0.3, help="share of PO lines received")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temp folder)")
    args = ap.parse_args()

    bench = _allocation_benchmark()
    as_of = bench.AS_OF  # type: ignore[attr-defined]
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-replenish-"))
    settings = load_settings(db=work / "bench.duckdb", landing=work / "landing")
    con = store.connect(settings.db)
    t = time.perf_counter()
    shape = bench.generate(  # type: ignore[attr-defined]
        con, lines=args.lines, skus=args.skus, skew="zipf", seed=args.seed
    )
    # a share of the PO lines was ordered 5-40 days before the run and received since,
    # late or early against an ETA 14 days after the order
    con.execute(
        "update purchase_orders set status = 'received', "
        "first_seen_at = $as_of::timestamptz - interval 40 day, "
        "first_expected_at = ($as_of::timestamptz - interval 26 day)::date, "
        "received_at = $as_of::timestamptz - interval 40 day "
        "+ (5 + hash(po_id, 'lt') % 30) * interval 1 day "
        "where hash(po_id, 'rcv') % 1000 < $share",
        {"as_of": as_of, "share": int(args.received * 1000)},
    )
    allocation_store.reconcile(con, as_of=as_of, settings=settings)
    allocation_store.allocate(con, run_id="bench", as_of=as_of, settings=settings, now=as_of)
    gen_s = time.perf_counter() - t

    steps: dict[str, float] = {}
    t = time.perf_counter()
    summary = replenish.replenish(
        con, run_id="bench", as_of=as_of, settings=settings, timings=steps
    )
    result = {
        "lines": args.lines,
        "skus": args.skus,
        **shape,
        "setup_seconds": round(gen_s, 1),
        "replenish_seconds": round(time.perf_counter() - t, 2),
        "replenish_steps": steps,
        "advice_rows": summary["rows"],
        "below_reorder_point": summary["below_reorder_point"],
        "measured_lead_times": summary["measured_lead_times"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
