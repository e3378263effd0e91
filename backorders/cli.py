"""The `backorders` command line: demo, run, status, explain, emails, kpis, replenish, serve, ..."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# A cold PREFECT_HOME can take longer than Prefect's 20 s default to start the
# temporary API server (measured here: 13-35 s); give it room unless set.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# The temporary server's telemetry heartbeat has nowhere to go here and races the
# server's own SQLite writes at start-up ("database is locked"); keep it off.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _as_of(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--as-of {text!r} is not an ISO 8601 date or timestamp (e.g. 2026-11-23T06:00:00Z)"
        ) from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--as-of {text!r} needs a timezone (Z or +hh:mm)")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backorders", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate demo feeds, run one full cycle, print a summary")
    d.add_argument(
        "--dir", type=Path, default=Path("data/demo"), help="where landing/ and the db go"
    )
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--scale", type=int, default=1, help="1 = about 3,000 order lines")

    r = sub.add_parser("run", help="one full cycle on a landing zone")
    r.add_argument("--landing", type=Path, help="landing zone (default: BACKORDERS_LANDING)")
    r.add_argument("--db", type=Path, help="DuckDB file (default: BACKORDERS_DB)")
    r.add_argument("--as-of", type=_as_of, help="the run's 'now' (ISO 8601; default: now)")
    r.add_argument("--dry-run", action="store_true", help="render emails, send nothing")
    r.add_argument(
        "--full",
        action="store_true",
        help="reallocate every sku (default: only the skus whose inputs changed)",
    )

    s = sub.add_parser("status", help="where each line of an order stands, and why")
    s.add_argument("order_id")
    s.add_argument("--db", type=Path)

    e = sub.add_parser("explain", help="why a line got what it got")
    e.add_argument("order_id")
    e.add_argument("line_no", nargs="?", type=int)
    e.add_argument("--db", type=Path)

    m = sub.add_parser(
        "emails",
        help="render queued emails as they are (or were) sent; a dry run's emails too",
    )
    m.add_argument("--db", type=Path)
    m.add_argument("--run", help="the run that queued them (default: the latest that did)")
    m.add_argument("--order", help="only emails that carry this order")
    m.add_argument("--email", action="append", help="only this email key (repeatable)")
    m.add_argument("--status", help="only emails whose messages have this status")
    m.add_argument("--limit", type=int, default=20, help="at most this many (0: all)")
    m.add_argument(
        "--format",
        choices=("text", "html", "jsonl"),
        default="text",
        help="text: headers and text body; html: headers and HTML body; jsonl: one JSON "
        "object per email with every field",
    )

    k = sub.add_parser("kpis", help="fill rate, backorder aging, promise and supplier KPIs")
    k.add_argument("--db", type=Path)
    k.add_argument("--format", choices=("table", "json"), default="table")

    rp = sub.add_parser(
        "replenish",
        help="replenishment advice per sku and location, as of the last committed run",
    )
    rp.add_argument("--db", type=Path)
    rp.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table: the suggested orders, with why (--all: every sku and location); json: "
        "an array with one object per sku and location; csv: the same rows with a header",
    )
    rp.add_argument(
        "--all", action="store_true", help="table: every sku and location, not only orders"
    )

    v = sub.add_parser("verify-audit", help="check the audit log's hash chain")
    v.add_argument("--db", type=Path)

    ai = sub.add_parser(
        "accept-inventory",
        help="accept the stock as counted: the next run allocates once despite the closed "
        "inventory accuracy gate (audited)",
    )
    ai.add_argument("--db", type=Path)
    ai.add_argument("--reason", required=True, help="why the counts are right (audited)")
    ai.add_argument("--by", help="who accepts them (default: the login name)")

    sv = sub.add_parser("serve", help="serve the deployments (schedules, supplier-delay rerun)")
    sv.add_argument("--landing", type=Path)
    sv.add_argument("--db", type=Path)
    sv.add_argument("--cron", default="0 2 * * *", help="nightly full cycle (default 02:00 UTC)")
    return p


def _print_summary(summary: dict[str, Any]) -> None:
    from backorders.report import summary_text

    print("\n" + summary_text(summary))


def _run_flow(
    landing: Path | None,
    db: Path,
    as_of: datetime | None,
    *,
    dry_run: bool,
    memory_limit: str,
    full: bool = False,
) -> int:
    """Run one cycle under the whole-cycle guard and our own temporary Prefect server."""
    from backorders import interrupt, lifecycle, pipeline, prefect_server

    interrupt.reset()
    # Our own temporary server: the guard first, so a second run, a damaged or unusable
    # file fail in one line before Prefect starts (seconds). A shared Prefect API
    # (PREFECT_API_URL): no early guard, so a second run waits in the flow for the
    # database's writer slot (backorders.writer_slot) instead of failing on the lock.
    early_guard = (
        contextlib.nullcontext()
        if prefect_server.api_url_configured()
        else lifecycle.cycle_guard(db, memory_limit=memory_limit)
    )
    with lifecycle.stop_signals(), early_guard, prefect_server.temporary_api():
        interrupt.check()  # a stop asked for while the server started
        from flows.backorder_cycle import backorder_cycle

        state = backorder_cycle(
            landing=str(landing) if landing else None,
            db=str(db),
            as_of=as_of,
            dry_run=dry_run,
            full=full,
            return_state=True,
        )
    if state.is_cancelled() or interrupt.requested():
        print(f"\nbackorders: {state.message or 'interrupted'}", file=sys.stderr)
        return 128 + (interrupt.signum() or 15)
    if not state.is_completed():
        exc = state.result(raise_on_failure=False)
        print(f"\nbackorders: the cycle stopped: {exc}", file=sys.stderr)
        return 1
    summary = state.result()
    _print_summary(summary)
    code = pipeline.EXIT_CODES.get(summary.get("status", "succeeded"), 1)
    if code == 3:
        print(f"\nbackorders: {state.message}", file=sys.stderr)
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate demo feeds (deterministic) and run one cycle on them."""
    from backorders.devtools import demo_stripe
    from backorders.devtools.demo_data import DemoSpec, generate
    from backorders.settings import load_settings

    settings = load_settings()
    spec = DemoSpec(seed=args.seed, scale=args.scale)
    landing = args.dir / "landing"
    manifest = generate(landing, spec)
    print(
        f"demo feeds: {len(manifest.files)} files in {landing} (seed {spec.seed}, scale {spec.scale})"
    )
    # payments go to a local Stripe server at the demo's clock (never a real one); emails
    # are recorded and not sent: the demo's environment has no SendGrid key
    with demo_stripe.local_stripe(spec.as_of, manifest.authorizations) as stripe:
        code = _run_flow(
            landing,
            args.dir / "backorders.duckdb",
            spec.as_of,
            dry_run=False,
            memory_limit=settings.memory_limit,
        )
    print(f"{'local Stripe server':<24} {demo_stripe.headline(stripe)}")
    return code


def cmd_run(args: argparse.Namespace) -> int:
    """One cycle on a landing zone."""
    from backorders.settings import load_settings

    settings = load_settings(landing=args.landing, db=args.db)
    if not settings.landing.is_dir():
        print(f"backorders: landing zone {settings.landing} does not exist", file=sys.stderr)
        return 2
    return _run_flow(
        settings.landing,
        settings.db,
        args.as_of,
        dry_run=args.dry_run,
        memory_limit=settings.memory_limit,
        full=args.full,
    )


def _open_read_only(db: Path | None) -> tuple[Any, Any]:
    """The settings and a read-only connection; refuses while a run holds the database."""
    from backorders import runlock
    from backorders.adapters import store
    from backorders.settings import load_settings

    settings = load_settings(db=db)
    held = runlock.holder(settings.db)
    if held is not None:
        # the running cycle's results are not all committed: show none of them
        raise runlock.RunInProgress(settings.db, held, reading=True)
    return settings, store.connect(settings.db, read_only=True)


def cmd_status(args: argparse.Namespace) -> int:
    """Print each line of an order: status, quantities, promised date, and why; its payment."""
    settings, con = _open_read_only(args.db)
    rows = con.execute(
        "select line_no, sku, qty_ordered, qty_shipped, qty_allocated, qty_promised, "
        "qty_unpromised, promised_date, status, priority_rank, reason, run_id "
        "from line_status where order_id = $o order by line_no",
        {"o": args.order_id},
    ).fetchall()
    if not rows:
        known = con.execute(
            "select status from orders where order_id = $o", {"o": args.order_id}
        ).fetchone()
        why = f"order status {known[0]}, no open or recent line" if known else "unknown order"
        print(f"backorders: {args.order_id}: {why}", file=sys.stderr)
        return 1
    print(f"order {args.order_id} (as of run {rows[0][-1]})")
    for ln, sku, qo, qs, qa, qp, qu, pd, st, _rank, reason, _ in rows:
        print(
            f"  line {ln} {sku}: {st}; ordered {qo}, shipped {qs}, from stock {qa}, "
            f"promised {qp}, unpromised {qu}; promised date {pd or '-'}"
        )
        print(f"      why: {reason}")
    msgs = con.execute(
        "select kind, status, created_at, coalesce(last_error, '') from outbox where order_id = $o "
        "order by created_at",
        {"o": args.order_id},
    ).fetchall()
    for kind, st, created, err in msgs:
        print(f"  email {kind}: {st} ({created:%Y-%m-%d %H:%M}) {err}")
    from backorders.payment_stage import describe_order

    for line in describe_order(con, settings, args.order_id):
        print(line)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain the rank, the competition and the supply behind each line of an order."""
    from backorders.explain import explain

    settings, con = _open_read_only(args.db)
    text = explain(
        con,
        args.order_id,
        args.line_no,
        priority_key=list(settings.priority_key),
        tiers=settings.tiers,
    )
    if not text:
        what = f"{args.order_id} line {args.line_no}" if args.line_no else args.order_id
        print(f"backorders: {what}: no such open or recent line", file=sys.stderr)
        return 1
    from backorders.payment_stage import describe_order

    print("\n".join(text + describe_order(con, settings, args.order_id)))
    return 0


def cmd_emails(args: argparse.Namespace) -> int:
    """Render queued emails from the outbox (they are not stored rendered) and print them."""
    import json

    from backorders.adapters import outbox

    settings, con = _open_read_only(args.db)
    run_id = args.run
    if run_id is None:
        latest = con.execute(
            "select run_id from outbox group by run_id order by max(created_at) desc, run_id "
            "limit 1"
        ).fetchone()
        if latest is None:
            print("backorders: the outbox is empty", file=sys.stderr)
            return 1
        run_id = latest[0]
    rows = con.execute(
        "select e.email_key, e.to_email, e.to_name, e.kinds, e.message_keys, "
        "any_value(o.status), list(distinct o.order_id order by o.order_id), "
        "any_value(o.last_error), min(o.created_at) "
        "from outbox_emails e join outbox o using (email_key) "
        "where o.run_id = $run "
        "and ($order::varchar is null or e.email_key in "
        "(select email_key from outbox where order_id = $order)) "
        "and ($keys::varchar[] is null or list_contains($keys::varchar[], e.email_key)) "
        "and ($status::varchar is null or o.status = $status) "
        "group by all order by e.email_key limit $limit",
        {
            "run": run_id,
            "order": args.order,
            "keys": args.email,
            "status": args.status,
            "limit": args.limit if args.limit > 0 else None,
        },
    ).fetchall()
    if not rows:
        print(f"backorders: no queued email of run {run_id} matches", file=sys.stderr)
        return 1
    renderer = outbox.EmailRenderer(con, discount_code=settings.discount_code)
    for start in range(0, len(rows), 5_000):
        part = rows[start : start + 5_000]
        rendered = renderer.emails([r[0] for r in part])
        for key, to, name, kinds, mkeys, status, orders, reason, created in part:
            r = rendered[key]
            if args.format == "jsonl":
                record = {
                    "email_key": key,
                    "run_id": run_id,
                    "to_email": to,
                    "to_name": name,
                    "status": status,
                    "reason": reason if status == "suppressed" else None,
                    "kinds": list(kinds),
                    "order_ids": list(orders),
                    "message_keys": list(mkeys),
                    "created_at": created.isoformat(),
                    "subject": r.subject,
                    "text": r.text,
                    "html": r.html,
                }
                print(json.dumps(record, ensure_ascii=False))
                continue
            print(f"== email {key} (run {run_id}, {status}{f': {reason}' if reason else ''})")
            print(f"To: {name or ''} <{to}>")
            print(f"Subject: {r.subject}")
            print(f"Orders: {', '.join(orders)}; kinds: {', '.join(kinds)}\n")
            print(r.text if args.format == "text" else r.html)
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    """Print the KPIs as of the last committed run (docs/kpis.md), as text tables or JSON."""
    import json

    from backorders.kpis import NoCommittedRun, compute_kpis, kpis_text

    opened = _open_read_only(args.db)
    if opened is None:
        return 2
    _, con = opened
    try:
        kpis = compute_kpis(con)
    except NoCommittedRun as exc:
        print(f"backorders: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(kpis, indent=2) if args.format == "json" else kpis_text(kpis))
    return 0


def cmd_replenish(args: argparse.Namespace) -> int:
    """Print the replenishment advice of the last committed run (docs/replenishment.md)."""
    from backorders.adapters import replenish
    from backorders.replenish_text import advice_csv, advice_json, advice_table

    _, con = _open_read_only(args.db)
    try:
        run_id = replenish.latest_run(con)
    except replenish.NoAdvice as exc:
        print(f"backorders: {exc}", file=sys.stderr)
        return 1
    only_orders = args.format == "table" and not args.all
    rows = replenish.advice_rows(con, run_id, only_orders=only_orders)
    if args.format == "json":
        print(advice_json(rows, run_id))
    elif args.format == "csv":
        sys.stdout.write(advice_csv(rows, run_id))
    else:
        print(advice_table(rows, run_id, total=replenish.advice_count(con, run_id)))
    return 0


def cmd_verify_audit(args: argparse.Namespace) -> int:
    """Check the audit log's hash chain; non-zero exit when it is broken."""
    from backorders.adapters import audit

    settings, con = _open_read_only(args.db)
    # every table, every block: a damaged file is never reported intact
    from backorders.adapters import store

    store.check_integrity(con, settings.db)
    n = con.execute("select count(*) from audit_log").fetchone()[0]  # type: ignore[index]
    problems = audit.verify(con)
    for p in problems:
        print(p)
    print(f"audit log: {n} rows, {'intact' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1


def cmd_accept_inventory(args: argparse.Namespace) -> int:
    """Record an audited override of the closed inventory accuracy gate, for the next run."""
    import getpass

    from backorders.adapters import inventory_gate, store
    from backorders.settings import load_settings

    reason = args.reason.strip()
    if not reason:
        print("backorders: --reason must say why the counts are right", file=sys.stderr)
        return 2
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        login = "unknown"
    by = (args.by or "").strip() or login
    settings = load_settings(db=args.db)
    if not settings.db.exists():
        print(f"backorders: no database at {settings.db}", file=sys.stderr)
        return 2
    try:
        with store.connect(settings.db) as con, store.transaction(con):
            o = inventory_gate.record_override(con, by=by, reason=reason, now=datetime.now(UTC))
    except (store.StoreError, inventory_gate.GateNotClosed) as exc:
        print(f"backorders: {exc}", file=sys.stderr)
        return 1
    print(
        f"override {o['override_id']} recorded by {by}: the next run allocates once despite the "
        f"gate closed by run {o['closed_run_id']} ({o['inaccurate_items']} of "
        f"{o['judged_items']} counted items differ from book stock), if those are still the "
        "inaccurate counts; the run after it judges the stock again"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the nightly cycle and the supplier-delay rerun as Prefect deployments."""
    from backorders import prefect_server
    from flows.deployments import serve_all

    # without PREFECT_API_URL, the temporary server we own (no scheduler: schedules need
    # `prefect server start`), so that nothing outlives the command
    with prefect_server.temporary_api():
        serve_all(landing=args.landing, db=args.db, cron=args.cron)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `backorders` command."""
    args = _parser().parse_args(argv)
    handler = {
        "demo": cmd_demo,
        "run": cmd_run,
        "status": cmd_status,
        "explain": cmd_explain,
        "emails": cmd_emails,
        "kpis": cmd_kpis,
        "replenish": cmd_replenish,
        "verify-audit": cmd_verify_audit,
        "serve": cmd_serve,
        "accept-inventory": cmd_accept_inventory,
    }[args.command]
    from pydantic import ValidationError

    from backorders import interrupt, runlock
    from backorders.adapters import store
    from backorders.settings import InvalidSettings

    try:
        return handler(args)
    except ValidationError as exc:
        # a bad setting (settings file or BACKORDERS_* variable): one line per field
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        print(f"backorders: invalid settings: {problems}", file=sys.stderr)
        return 2
    except InvalidSettings as exc:
        print(f"backorders: invalid settings: {exc}", file=sys.stderr)
        return 2
    except (runlock.RunInProgress, store.StoreBusy, store.DatabaseDamaged) as exc:
        # try again later / restore from backup: stopped (1), the arguments were right
        print(f"backorders: {exc}", file=sys.stderr)
        return 1
    except store.StoreError as exc:
        # --db is not a usable DuckDB file (a directory, another kind of file, ...)
        print(f"backorders: {exc}", file=sys.stderr)
        return 2
    except interrupt.Interrupted as exc:
        print(f"backorders: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
