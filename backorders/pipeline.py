"""The stages of one backorder cycle, as plain functions of (settings, run id, as-of).

Each stage opens the DuckDB file, does its set-based work, and returns a small,
JSON-able summary. Prefect tasks (tasks/) wrap these; tests can call them directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from backorders import interrupt
from backorders.adapters import (
    allocation_store,
    audit,
    gx_runner,
    ingest,
    inventory_gate,
    outbox,
    store,
)
from backorders.report import counts_text, plan_text
from backorders.settings import Settings
from expectations import FEED_SUITES, POST_ALLOCATION_SUITES

Progress = Callable[[str], None]


class GateClosed(RuntimeError):
    """A validation gate stopped the run before allocation (not a crash: a decision)."""


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def new_run_id(as_of: datetime) -> str:
    """A sortable, unique run id."""
    return f"{as_of.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


# how a run ends -> the exit code of `backorders run` (CONTRACT.md)
EXIT_CODES = {
    "succeeded": 0,
    "blocked": 1,
    "failed": 1,
    "succeeded_with_failures": 3,
}


def send_failures(summary: dict[str, Any]) -> int:
    """How many messages of the run failed to send (0 for a dry run)."""
    # the send pass's own count: failed, in doubt, or left unsent because sending stopped
    return int((summary.get("communicate") or {}).get("send_failures") or 0)


def payment_failures(summary: dict[str, Any]) -> int:
    """How many payment requests of the run failed, are in doubt or were left unsent."""
    return int((summary.get("payments") or {}).get("payment_failures") or 0)


def success_status(summary: dict[str, Any]) -> str:
    """`succeeded`, or `succeeded_with_failures` when some sends (emails, payments) failed."""
    failed = send_failures(summary) + payment_failures(summary)
    return "succeeded_with_failures" if failed > 0 else "succeeded"


def start_run(settings: Settings, run_id: str, as_of: datetime, flow_run_id: str | None) -> None:
    """Record the run as started (and audit it); settle runs a killed process left `running`."""
    from backorders.lifecycle import settle_abandoned_runs

    with (
        store.connect(settings.db, memory_limit=settings.memory_limit) as con,
        store.transaction(con),
    ):
        settle_abandoned_runs(con, run_id, utcnow())
        con.execute(
            "insert into runs (run_id, flow_run_id, as_of, started_at, status) "
            "values ($r, $f, $a, $n, 'running')",
            {"r": run_id, "f": flow_run_id, "a": as_of, "n": utcnow()},
        )
        audit.append(
            con,
            run_id,
            [
                audit.AuditEvent(
                    "run_started",
                    "run",
                    run_id,
                    {"as_of": as_of.isoformat(), "settings": settings.public_dict()},
                )
            ],
            logged_at=utcnow(),
        )


def finish_run(
    settings: Settings, run_id: str, status: str, message: str | None, summary: dict[str, Any]
) -> str:
    """Record how the run ended (and audit it); return the audit chain's head, seq:hash."""
    import json

    with (
        store.connect(settings.db, memory_limit=settings.memory_limit) as con,
        store.transaction(con),
    ):
        con.execute(
            "update runs set finished_at = $n, status = $s, message = $m, summary = $j::json "
            "where run_id = $r",
            {
                "n": utcnow(),
                "s": status,
                "m": message,
                "j": json.dumps(summary, default=str),
                "r": run_id,
            },
        )
        audit.append(
            con,
            run_id,
            [audit.AuditEvent(f"run_{status}", "run", run_id, {"message": message})],
            logged_at=utcnow(),
        )
        row = con.execute("select seq, hash from audit_log order by seq desc limit 1").fetchone()
    # shown in the Prefect artifact, outside the database, so a rewritten chain shows
    return f"{row[0]}:{row[1]}" if row else ""


def ingest_stage(
    settings: Settings, run_id: str, as_of: datetime, progress: Progress
) -> dict[str, Any]:
    """Load every new landing file; summary of files and rows by fate."""
    # the validate stage needs Great Expectations (seconds to import): import it
    # in the background while DuckDB works (the GIL is free during its queries)
    gx_runner.prewarm()
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        results = ingest.ingest_landing(
            con,
            settings.landing,
            run_id=run_id,
            as_of=as_of,
            settings=settings,
            now=utcnow,
            progress=progress,
        )
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    return {
        "files": by_status,
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "rejected": [
            {"file": r.path, "reason": r.reason} for r in results if r.status == "rejected"
        ],
        # files that arrived and held nothing (loaded with 0 rows): shown, never passed over
        "empty": [
            r.path for r in results if r.status == "loaded" and r.reason == ingest.EMPTY_FILE
        ],
    }


def validate_stage(settings: Settings, run_id: str, progress: Progress) -> dict[str, Any]:
    """Check this run's feed batches (GX) and the stock basis' accuracy; close the gate if low.

    One transaction: the counts judged, the suites' results, the gate's decision (and the
    override it used) commit together or not at all, so a validation that dies half way
    leaves its counts to be judged by the next run (backorders.adapters.inventory_gate).
    """
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        gx_runner.limit_duckdb_memory(con)  # the batches live in Python, not in DuckDB
        with store.transaction(con):
            judged = inventory_gate.judge_new_counts(con, run_id, settings)
            suites = gx_runner.run_suites(con, FEED_SUITES, run_id)
            suite_summary = {
                s.suite: {
                    "success": s.success,
                    "rows": s.rows,
                    "failed": s.failed,
                    "seconds": s.seconds,
                }
                for s in suites
            }
            audit.append(
                con,
                run_id,
                [audit.AuditEvent("validation", "run", run_id, {"suites": suite_summary})],
                logged_at=utcnow(),
            )
            gate = inventory_gate.decide(con, run_id, settings, newly_judged=judged, now=utcnow())
    summary = {
        "inventory_accuracy": gate.accuracy,
        "recounted_items": gate.judged_items,
        "gate": gate.summary(),
        "suites": suite_summary,
    }
    for s in suites:
        if not s.success:
            progress(f"validation: suite {s.suite} failed {len(s.failed)} expectation(s)")
    if gate.accuracy is None:
        progress("inventory accuracy: no count of the stock basis was judged (nothing to compare)")
    else:
        progress(
            f"inventory accuracy: {gate.accuracy:.1%} of {gate.judged_items} counted items of the "
            f"stock basis match book stock ({judged} count(s) judged in this run)"
        )
    if gate.override:
        o = gate.override
        progress(
            f"inventory accuracy gate: override {o['override_id']} by {o['by']} "
            f"({o['reason']!r}): {o['outcome']}"
        )
    if gate.state == "closed":
        raise GateClosed(gate.message)
    critical = [s.suite for s in suites if s.critical and not s.success]
    if critical:
        raise GateClosed(f"critical validation suite(s) failed: {', '.join(critical)}")
    return summary


@contextmanager
def _interruptible_db(settings: Settings) -> Iterator[Any]:
    """The database for a heavy stage: a stop cuts the statement; its transaction rolls back."""
    with (
        store.connect(settings.db, memory_limit=settings.memory_limit) as con,
        store.interruptible(con),
    ):
        yield con


def reconcile_stage(
    settings: Settings, run_id: str, as_of: datetime, progress: Progress, *, full: bool = False
) -> dict[str, Any]:
    """Book stock and supply lots (the changed skus', or all); check the inventory equations."""
    with _interruptible_db(settings) as con:
        pos = allocation_store.reconcile(con, as_of=as_of, settings=settings, full=full)
        with store.transaction(con):
            suites = gx_runner.run_suites(
                con, ("mart_book_stock",), run_id, failure_rows=settings.mart_failure_rows
            )
    failed = [s for s in suites if not s.success]
    if failed:
        named = "; ".join(s.describe_violations() for s in failed if s.violation_count)
        raise GateClosed(
            f"inventory equations do not hold (suite {', '.join(s.suite for s in failed)})"
            + (f": {named}" if named else "")
        )
    progress(
        f"reconcile: usable stock {pos.usable_stock_units} units on {pos.skus_in_stock} skus "
        f"({pos.safety_units} held back as safety stock); incoming {pos.incoming_units} units on "
        f"{pos.incoming_po_lines} open PO lines; {pos.overdue_po_lines} overdue PO lines; "
        + (
            f"{pos.skus_rebuilt} sku(s) rebuilt (their inputs changed)"
            if pos.supply_mode == "incremental"
            else f"all skus rebuilt: {pos.supply_mode}"
        )
    )
    return asdict(pos)


def allocate_stage(
    settings: Settings, run_id: str, as_of: datetime, progress: Progress, *, full: bool = False
) -> dict[str, Any]:
    """Allocate (the changed skus, or all), then check the results' equations (a failure blocks the emails)."""
    with _interruptible_db(settings) as con:
        summary = allocation_store.allocate(
            con, run_id=run_id, as_of=as_of, settings=settings, now=utcnow(), full=full
        )
        with store.transaction(con):
            suites = gx_runner.run_suites(con, POST_ALLOCATION_SUITES, run_id)
    failed = [s.suite for s in suites if not s.success]
    if failed:
        raise GateClosed(
            f"allocation results fail their checks (suite {', '.join(failed)}); no email sent"
        )
    progress(f"allocate: {plan_text(summary['plan'])}")
    progress(f"allocate: lines by status: {counts_text(summary['lines_by_status'])}")
    return summary


def replenish_stage(
    settings: Settings, run_id: str, as_of: datetime, progress: Progress
) -> dict[str, Any]:
    """Replenishment advice per sku and location from this run's allocation (docs/replenishment.md)."""
    from backorders.adapters import replenish

    with _interruptible_db(settings) as con:
        summary = replenish.replenish(con, run_id=run_id, as_of=as_of, settings=settings)
    progress(
        f"replenish: {summary['below_reorder_point']} of {summary['rows']} sku/location(s) below "
        f"their reorder point, {summary['suggested_units']} units suggested"
    )
    return summary


def communicate_stage(
    settings: Settings,
    run_id: str,
    *,
    dry_run: bool,
    progress: Progress,
    sender: outbox.Sender | None = None,
) -> dict[str, Any]:
    """Queue the messages the changes deserve; send them unless dry-run or no API key."""
    from backorders.domain.messages import Policy

    dry = dry_run or not settings.sending_enabled
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        q = outbox.queue_messages(
            con,
            run_id=run_id,
            now=utcnow(),
            dry_run=dry,
            policy=Policy(settings.delay_apology_days, settings.max_wait_days),
        )
        progress(
            f"outbox: {q.queued} queued, {q.suppressed} suppressed (by kind: "
            f"{counts_text(q.by_kind)}), in {q.emails} emails"
        )
        sent: dict[str, int] = {}
        failures, stopped = 0, None
        if not dry:
            if sender is None:
                sender = make_sender(settings)
            r = outbox.send_pending(
                con,
                sender,
                run_id=run_id,
                now=utcnow,
                progress=progress,
                batch_size=settings.send_batch_size,
                concurrency=settings.send_concurrency,
                retry_budget=settings.send_retry_budget,
                options=outbox.SendOptions.from_settings(settings),
            )
            sent = asdict(r)
            failures, stopped = r.failures, r.stopped
    summary: dict[str, Any] = {
        "queued": q.queued,
        "suppressed": q.suppressed,
        "by_kind": q.by_kind,
        "sent": sent,
        "dry_run": dry,
        "send_failures": failures,  # failed, in doubt, or left unsent because sending stopped
        "send_stopped": stopped,  # why sending stopped early (never the key), or None
    }
    # a stop request ended the send loop (in-flight requests recorded): the flow sees it,
    # with what was queued and sent before the stop
    interrupt.check(done=summary)
    return summary


def payments_stage(
    settings: Settings, run_id: str, as_of: datetime, *, dry_run: bool, progress: Progress
) -> dict[str, Any]:
    """Queue the captures and releases the allocation deserves; send them unless dry-run."""
    from backorders.payment_stage import payments_stage as stage

    return stage(settings, run_id, as_of, dry_run=dry_run, progress=progress)


def retryable_sends(settings: Settings) -> int:
    """Messages that failed transiently (SendGrid surely did not take them), within budget."""
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        row = con.execute(
            "select count(*) from outbox where status = 'failed' and failure = 'transient' "
            "and attempts < $budget",
            {"budget": settings.send_retry_budget},
        ).fetchone()
    return int(row[0]) if row else 0


def make_sender(settings: Settings) -> outbox.Sender:
    """The SendGrid sender from settings (the key stays inside the sender)."""
    from backorders.adapters.sendgrid_sender import SendGridSender

    if not settings.from_email:
        raise ValueError("BACKORDERS_FROM_EMAIL is required when sending (SENDGRID_API_KEY is set)")
    return SendGridSender(
        api_key=settings.sendgrid_key(),
        host=settings.sendgrid_host,
        from_email=settings.from_email,
        from_name=settings.from_name,
        timeout_s=settings.send_timeout_s,
        max_attempts=settings.send_max_attempts,
        sandbox=settings.sandbox,
    )
