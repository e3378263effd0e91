"""The backorder cycle flow: it only sequences the stage tasks and publishes a summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact
from prefect.states import Cancelled, Completed, State

from backorders import interrupt, lifecycle, ops_artifacts, pipeline, writer_slot
from backorders.report import summary_markdown
from backorders.settings import load_settings
from tasks import artifacts, cycle
from tasks import events as event_tasks


@flow(name="backorder-cycle", log_prints=True)
def backorder_cycle(
    landing: str | None = None,
    db: str | None = None,
    as_of: datetime | None = None,
    dry_run: bool = False,
    reason: str | None = None,
    full: bool = False,
) -> State:
    """Ingest, validate, reconcile, allocate, communicate, replenish once; end with the summary.

    Reconcile and allocate redo only the skus whose inputs changed since the last run,
    unless `full` (or allocation_plan finds a reason for a full run: docs/allocation.md).
    """
    overrides = {k: v for k, v in {"landing": landing, "db": db}.items() if v is not None}
    settings = load_settings(**overrides)
    as_of = as_of or pipeline.utcnow()
    run_id = pipeline.new_run_id(as_of)
    summary: dict[str, Any] = {"run_id": run_id, "as_of": as_of.isoformat(), "reason": reason}
    progress_id = artifacts.start_progress()
    artifacts.set_progress(progress_id, 0.0, "waiting for the database's writer slot")
    # one writer per database through Prefect: a second run waits here (WriterBusy after
    # writer_wait_s), before it touches the file; the run lock below stays the last guard
    with writer_slot.one_writer(settings.db, wait_s=settings.writer_wait_s):
        return _cycle(settings, overrides, summary, as_of, dry_run, progress_id, full)


def _cycle(
    settings: Any,
    overrides: dict[str, Any],
    summary: dict[str, Any],
    as_of: datetime,
    dry_run: bool,
    progress_id: str,
    full: bool = False,
) -> State:
    """The stages under the stop signals and the whole-cycle guard."""
    run_id = summary["run_id"]
    ingest, reconcile, communicate = (
        cycle.retrying(t, settings) for t in (cycle.ingest, cycle.reconcile, cycle.communicate)
    )
    # Prefect's engine put its own SIGTERM bridge in place (TerminationSignal raised
    # wherever the flow happens to be); ours asks the stages to stop at their next check
    with (
        lifecycle.stop_signals(),
        lifecycle.cycle_guard(settings.db, memory_limit=settings.memory_limit),
    ):
        cycle.start_run(overrides, run_id, as_of, str(runtime.flow_run.id or "") or None)
        try:
            for name, stage in (
                ("ingest", lambda: ingest(overrides, run_id, as_of, progress_id)),
                ("supplier_delays", lambda: event_tasks.supplier_delays(overrides, run_id)),
                ("validate", lambda: cycle.validate(overrides, run_id, progress_id)),
                ("reconcile", lambda: reconcile(overrides, run_id, as_of, progress_id, full)),
                ("allocate", lambda: cycle.allocate(overrides, run_id, as_of, progress_id, full)),
                (
                    "payments",
                    lambda: cycle.payments(overrides, run_id, as_of, dry_run, progress_id),
                ),
                ("communicate", lambda: communicate(overrides, run_id, dry_run, progress_id)),
                # last: planning advice, read from the allocation; customer emails never wait on it
                ("replenish", lambda: cycle.replenish(overrides, run_id, as_of, progress_id)),
            ):
                interrupt.check()
                summary[name] = stage()
            interrupt.check()
        except interrupt.Interrupted as exc:
            if exc.done is not None:  # the stopped stage's own figures (emails sent so far)
                summary[name] = exc.done
            message = f"{exc}: what was committed stays; run the same command again to go on"
            _finish(overrides, summary, "interrupted", message, progress_id)
            return Cancelled(message=message, data=summary)
        except Exception as exc:
            status = "blocked" if isinstance(exc, pipeline.GateClosed) else "failed"
            _finish(overrides, summary, status, str(exc), progress_id)
            raise
        status = pipeline.success_status(summary)
        message = _failures_message(summary) if status == "succeeded_with_failures" else None
        _finish(overrides, summary, status, message, progress_id)
    return Completed(
        message=status.replace("_", " ") + (f": {message}" if message else ""), data=summary
    )


def _failures_message(summary: dict[str, Any]) -> str:
    """What did not go out in a run that succeeded with failures, and where to look."""
    parts = []
    if pipeline.send_failures(summary):
        parts.append(
            f"{pipeline.send_failures(summary)} message(s) failed to send: see "
            "`backorders emails --status failed`"
        )
    if pipeline.payment_failures(summary):
        parts.append(
            f"{pipeline.payment_failures(summary)} payment request(s) failed, in doubt or not "
            "sent: see table payment_requests (docs/payments.md)"
        )
    return "; ".join(parts)


def _finish(
    overrides: dict[str, Any],
    summary: dict[str, Any],
    status: str,
    message: str | None,
    progress_id: str,
) -> None:
    """Record the end (runs row, audit) and publish the run's artifacts, the summary last."""
    summary["status"] = status
    if message:
        summary["message"] = message
    summary["audit_head"] = cycle.finish_run(overrides, summary["run_id"], status, message, summary)
    summary["events"] = event_tasks.run_end(overrides, summary)
    try:
        artifacts.publish(overrides, summary["run_id"])
    except Exception as exc:  # the tables are for the eye: the run's outcome stands
        print(f"artifacts not published: {type(exc).__name__}: {exc}")
    if status.startswith("succeeded"):
        artifacts.set_progress(progress_id, 100.0, f"done: {status.replace('_', ' ')}")
    else:
        artifacts.set_progress(progress_id, _stopped_at(summary), f"stopped: {status}")
    create_markdown_artifact(
        summary_markdown(summary) + ops_artifacts.links_markdown(_ui_url()),
        key=ops_artifacts.SUMMARY_KEY,
        description=status,
    )


def _stopped_at(summary: dict[str, Any]) -> float:
    """The progress of a run that stopped: the start of the first stage it did not finish."""
    for stage in ("ingest", "validate", "reconcile", "allocate", "communicate", "replenish"):
        if stage not in summary:
            return ops_artifacts.STAGE_SPAN[stage][0]
    return ops_artifacts.STAGE_SPAN["finish"][0]


def _ui_url() -> str | None:
    from prefect.settings import PREFECT_UI_URL

    return PREFECT_UI_URL.value() or None
