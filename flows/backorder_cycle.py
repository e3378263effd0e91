"""The backorder cycle flow: it only sequences the stage tasks and publishes a summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact

from backorders import pipeline
from backorders.report import summary_markdown
from tasks import cycle


@flow(name="backorder-cycle", log_prints=True)
def backorder_cycle(
    landing: str | None = None,
    db: str | None = None,
    as_of: datetime | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Ingest, validate, reconcile, allocate and communicate once; return the run summary."""
    overrides = {k: v for k, v in {"landing": landing, "db": db}.items() if v is not None}
    as_of = as_of or pipeline.utcnow()
    run_id = pipeline.new_run_id(as_of)
    summary: dict[str, Any] = {"run_id": run_id, "as_of": as_of.isoformat(), "reason": reason}
    cycle.start_run(overrides, run_id, as_of, str(runtime.flow_run.id or "") or None)
    try:
        summary["ingest"] = cycle.ingest(overrides, run_id, as_of)
        summary["validate"] = cycle.validate(overrides, run_id)
        summary["reconcile"] = cycle.reconcile(overrides, run_id, as_of)
        summary["allocate"] = cycle.allocate(overrides, run_id, as_of)
        summary["communicate"] = cycle.communicate(overrides, run_id, dry_run)
    except Exception as exc:
        status = "blocked" if isinstance(exc, pipeline.GateClosed) else "failed"
        summary["status"], summary["message"] = status, str(exc)
        summary["audit_head"] = cycle.finish_run(overrides, run_id, status, str(exc), summary)
        create_markdown_artifact(
            summary_markdown(summary), key="backorder-cycle-summary", description=status
        )
        raise
    summary["status"] = "succeeded"
    summary["audit_head"] = cycle.finish_run(overrides, run_id, "succeeded", None, summary)
    create_markdown_artifact(
        summary_markdown(summary), key="backorder-cycle-summary", description="succeeded"
    )
    return summary


@flow(name="supplier-delay-rerun", log_prints=True)
def supplier_delay_rerun(
    supplier_id: str,
    note: str = "",
    landing: str | None = None,
    db: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Rerun the cycle now after a supplier delay (drop the supplier's update in the landing zone first)."""
    reason = f"rerun after supplier delay: {supplier_id}" + (f" ({note})" if note else "")
    return backorder_cycle(landing=landing, db=db, dry_run=dry_run, reason=reason)
