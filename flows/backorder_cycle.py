"""The backorder cycle flow: it only sequences the stage tasks and publishes a summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact
from prefect.states import Cancelled, Completed, State

from backorders import interrupt, lifecycle, pipeline
from backorders.report import summary_markdown
from backorders.settings import load_settings
from tasks import cycle
from tasks import events as event_tasks


@flow(name="backorder-cycle", log_prints=True)
def backorder_cycle(
    landing: str | None = None,
    db: str | None = None,
    as_of: datetime | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> State:
    """Ingest, validate, reconcile, allocate and communicate once; end in a state with the summary."""
    overrides = {k: v for k, v in {"landing": landing, "db": db}.items() if v is not None}
    settings = load_settings(**overrides)
    as_of = as_of or pipeline.utcnow()
    run_id = pipeline.new_run_id(as_of)
    summary: dict[str, Any] = {"run_id": run_id, "as_of": as_of.isoformat(), "reason": reason}
    # Prefect's engine put its own SIGTERM bridge in place (TerminationSignal raised
    # wherever the flow happens to be); ours asks the stages to stop at their next check
    with (
        lifecycle.stop_signals(),
        lifecycle.cycle_guard(settings.db, memory_limit=settings.memory_limit),
    ):
        cycle.start_run(overrides, run_id, as_of, str(runtime.flow_run.id or "") or None)
        try:
            for name, stage in (
                ("ingest", lambda: cycle.ingest(overrides, run_id, as_of)),
                ("supplier_delays", lambda: event_tasks.supplier_delays(overrides, run_id)),
                ("validate", lambda: cycle.validate(overrides, run_id)),
                ("reconcile", lambda: cycle.reconcile(overrides, run_id, as_of)),
                ("allocate", lambda: cycle.allocate(overrides, run_id, as_of)),
                ("communicate", lambda: cycle.communicate(overrides, run_id, dry_run)),
            ):
                interrupt.check()
                summary[name] = stage()
            interrupt.check()
        except interrupt.Interrupted as exc:
            message = f"{exc}: what was committed stays; run the same command again to go on"
            _finish(overrides, summary, "interrupted", message)
            return Cancelled(message=message, data=summary)
        except Exception as exc:
            status = "blocked" if isinstance(exc, pipeline.GateClosed) else "failed"
            _finish(overrides, summary, status, str(exc))
            raise
        status = pipeline.success_status(summary)
        message = (
            f"{pipeline.send_failures(summary)} message(s) failed to send: see "
            "`backorders emails --status failed`"
            if status == "succeeded_with_failures"
            else None
        )
        _finish(overrides, summary, status, message)
    return Completed(
        message=status.replace("_", " ") + (f": {message}" if message else ""), data=summary
    )


def _finish(
    overrides: dict[str, Any], summary: dict[str, Any], status: str, message: str | None
) -> None:
    """Record the end (runs row, audit) and publish the summary artifact."""
    summary["status"] = status
    if message:
        summary["message"] = message
    summary["audit_head"] = cycle.finish_run(overrides, summary["run_id"], status, message, summary)
    summary["events"] = event_tasks.run_end(overrides, summary)
    create_markdown_artifact(
        summary_markdown(summary), key="backorder-cycle-summary", description=status
    )
