"""Ingest and validation benchmark: the pipeline's ingest and validate stages on Parquet feeds.

    uv run python benchmarks/ingest.py --lines 1000000 --skus 20000 --dir /tmp/bench-ingest

Generates a world as benchmarks/allocation.py does (N order lines, N/2 orders, N/20
customers, the skus, one stock count per sku, about 0.3*N - skus PO lines), writes
it as the six Parquet feeds of a landing zone (in a child process, so that its
memory is not counted), then times `ingest_stage` and `validate_stage` exactly as
the flow runs them, on a fresh DuckDB file. With --bad K, K broken rows (a bad
quantity, an unknown sku, a repeated key) are mixed into the order lines, so the
quarantine path is timed too; with --again, the same feeds are dropped once more as
a full re-export with every tenth row newer (the merge path: update, not insert).
Prints one JSON line: seconds per feed file and per suite (a suite's batch is fetched
while the previous suite is checked, so suite seconds overlap), wall and CPU seconds
of the two stages, peak RSS. Timings on a shared 2-core machine are noisy: CPU
seconds (all threads of the process) say more than wall seconds when others run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/email.py (the email benchmark) would shadow the standard library's
# `email` package, which DuckDB's import needs: keep this folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import importlib.util
import json
import resource
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, str(_HERE.parent))

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def _allocation_benchmark() -> Any:
    """benchmarks/allocation.py as a module (its folder is not importable, see above)."""
    spec = importlib.util.spec_from_file_location("bench_allocation", _HERE / "allocation.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def generate_landing(
    work: Path, *, lines: int, skus: int, seed: int, bad: int, again: bool
) -> dict[str, int]:
    """Write the six Parquet feeds under work/landing (and work/landing2 with --again)."""
    from backorders.adapters import store

    alloc = _allocation_benchmark()
    gen_db = work / "generate.duckdb"
    gen_db.unlink(missing_ok=True)
    con = store.connect(gen_db)
    con.execute("set memory_limit = '4GB'")
    shape = alloc.generate(con, lines=lines, skus=skus, skew="uniform", seed=seed)
    if bad:
        # every kind of row the ingest must quarantine, spread over the file
        k = int(bad)
        con.execute(
            "update order_lines set qty = 0 where line_no = 2 and order_id in (select order_id "
            f"from order_lines using sample reservoir({k} rows) repeatable (7))"
        )
        con.execute(
            "update order_lines set sku = 'NO-SUCH-SKU' where line_no = 1 and order_id in "
            f"(select order_id from order_lines using sample reservoir({k} rows) repeatable (8))"
        )
    landing = work / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    alloc.write_feeds(con, landing)
    if bad:
        # a repeated key: the same lines again, in a second file of the same feed
        con.execute(
            f"copy (select order_id, line_no, sku, qty, unit_price, status, updated_at "
            f"from order_lines using sample reservoir({int(bad)} rows) repeatable (9)) "
            f"to '{landing / 'order_lines' / 'bench_dupes.parquet'}' (format parquet)"
        )
        con.execute(
            f"copy (select * from read_parquet('{landing / 'order_lines' / 'bench.parquet'}') "
            f"union all select * from read_parquet('{landing / 'order_lines' / 'bench_dupes.parquet'}')) "
            f"to '{landing / 'order_lines' / 'bench_all.parquet'}' (format parquet)"
        )
        (landing / "order_lines" / "bench.parquet").unlink()
        (landing / "order_lines" / "bench_dupes.parquet").unlink()
    if again:
        # a full re-export: every row again, every tenth one with a newer version
        con.execute(
            "update orders set updated_at = updated_at + interval 1 minute, status = 'cancelled' "
            "where hash(order_id) % 10 = 0"
        )
        con.execute(
            "update order_lines set updated_at = updated_at + interval 1 minute, qty = qty + 1 "
            "where hash(order_id, line_no) % 10 = 0"
        )
        con.execute(
            "update purchase_orders set updated_at = updated_at + interval 1 minute, "
            "expected_at = expected_at + 7 where hash(po_id) % 10 = 0"
        )
        con.execute("update stock set as_of = as_of + interval 1 minute")
        landing2 = work / "landing2"
        shutil.rmtree(landing2, ignore_errors=True)
        alloc.write_feeds(con, landing2)
    con.close()
    gen_db.unlink(missing_ok=True)
    return {k: int(v) for k, v in shape.items()}


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_stages(work: Path, landing: Path, run_id: str) -> dict[str, Any]:
    """Time ingest_stage and validate_stage on the landing zone; per file, per suite."""
    from backorders import pipeline
    from backorders.settings import load_settings

    settings = load_settings(db=work / "bench.duckdb", landing=landing)
    files: dict[str, float] = {}
    mark = [time.perf_counter()]

    def progress(msg: str) -> None:
        now = time.perf_counter()
        if msg.startswith("["):
            files[msg.split("] ", 1)[1].split(":", 1)[0]] = round(now - mark[0], 2)
        mark[0] = now

    t, cpu = time.perf_counter(), time.process_time()
    ingest = pipeline.ingest_stage(settings, run_id, AS_OF, progress)
    ingest_s, ingest_cpu = time.perf_counter() - t, time.process_time() - cpu
    rss_ingest = _rss_mb()
    t, cpu = time.perf_counter(), time.process_time()
    validate = pipeline.validate_stage(settings, run_id, lambda _msg: None)
    validate_s, validate_cpu = time.perf_counter() - t, time.process_time() - cpu
    return {
        "ingest_seconds": round(ingest_s, 2),
        "ingest_cpu_seconds": round(ingest_cpu, 1),
        "files": files,
        "rows_loaded": ingest["rows_loaded"],
        "rows_quarantined": ingest["rows_quarantined"],
        "rejected": ingest["rejected"],
        "peak_rss_mb_after_ingest": rss_ingest,
        "validate_seconds": round(validate_s, 2),
        "validate_cpu_seconds": round(validate_cpu, 1),
        "suites": {
            name: {k: s[k] for k in ("rows", "success", "seconds") if k in s}
            for name, s in validate["suites"].items()
        },
        "peak_rss_mb": _rss_mb(),
    }


def main() -> None:
    """Generate (child process), then time the two stages; print one JSON line."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--skus", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bad", type=int, default=0, help="broken order lines of each kind")
    ap.add_argument("--again", action="store_true", help="then ingest a full re-export")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temp folder)")
    ap.add_argument(
        "--reuse", action="store_true", help="keep the landing zone of an earlier run in --dir"
    )
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    shape_file = work / "shape.json"
    if args.generate_only:
        shape = generate_landing(
            work, lines=args.lines, skus=args.skus, seed=args.seed, bad=args.bad, again=args.again
        )
        key = {"lines": args.lines, "skus": args.skus, "seed": args.seed, "bad": args.bad}
        shape_file.write_text(json.dumps({"key": key, "again": args.again, "shape": shape}))
        return
    key = {"lines": args.lines, "skus": args.skus, "seed": args.seed, "bad": args.bad}
    old = json.loads(shape_file.read_text()) if shape_file.exists() else None
    t = time.perf_counter()
    if not (
        args.reuse
        and old
        and old["key"] == key
        and (old["again"] or not args.again)
        and (work / "landing").is_dir()
    ):
        cmd = [sys.executable, __file__, "--generate-only", "--dir", str(work)]
        cmd += ["--lines", str(args.lines), "--skus", str(args.skus), "--seed", str(args.seed)]
        cmd += ["--bad", str(args.bad)] + (["--again"] if args.again else [])
        subprocess.run(cmd, check=True)
    generate_s = time.perf_counter() - t
    shape = json.loads(shape_file.read_text())["shape"]
    for p in work.glob("bench.duckdb*"):
        p.unlink()
    result: dict[str, Any] = {**key, **shape, "generate_seconds": round(generate_s, 1)}
    result |= run_stages(work, work / "landing", "bench-1")
    if args.again:
        again = run_stages(work, work / "landing2", "bench-2")
        result["again"] = {k: v for k, v in again.items() if k != "peak_rss_mb_after_ingest"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
