"""Thin Prefect tasks: one per stage. They take ids, paths and settings overrides, never
connections or secrets, and log progress to the Prefect run log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task

from backorders import pipeline
from backorders.settings import load_settings


def _settings(overrides: dict[str, Any]) -> Any:
    return load_settings(**overrides)


def _progress() -> Any:
    return get_run_logger().info


@task(name="start-run")
def start_run(
    overrides: dict[str, Any], run_id: str, as_of: datetime, flow_run_id: str | None
) -> None:
    """Record the run as started."""
    pipeline.start_run(_settings(overrides), run_id, as_of, flow_run_id)


@task(name="ingest-landing-zone")
def ingest(overrides: dict[str, Any], run_id: str, as_of: datetime) -> dict[str, Any]:
    """Load new landing files into DuckDB; quarantine bad rows; reject unusable files."""
    return pipeline.ingest_stage(_settings(overrides), run_id, as_of, _progress())


@task(name="validate-inventory")
def validate(overrides: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Great Expectations suites on this run's batches, and the inventory accuracy gate."""
    return pipeline.validate_stage(_settings(overrides), run_id, _progress())


@task(name="reconcile")
def reconcile(overrides: dict[str, Any], run_id: str, as_of: datetime) -> dict[str, Any]:
    """Book stock, available to promise, incoming supply, ranked open demand."""
    return pipeline.reconcile_stage(_settings(overrides), run_id, as_of, _progress())


@task(name="allocate")
def allocate(overrides: dict[str, Any], run_id: str, as_of: datetime) -> dict[str, Any]:
    """Set-based allocation by priority; line_status, allocations, promise changes."""
    return pipeline.allocate_stage(_settings(overrides), run_id, as_of, _progress())


@task(name="communicate")
def communicate(overrides: dict[str, Any], run_id: str, dry_run: bool) -> dict[str, Any]:
    """Queue customer emails in the outbox and send them through SendGrid."""
    return pipeline.communicate_stage(
        _settings(overrides), run_id, dry_run=dry_run, progress=_progress()
    )


@task(name="finish-run")
def finish_run(
    overrides: dict[str, Any],
    run_id: str,
    status: str,
    message: str | None,
    summary: dict[str, Any],
) -> str:
    """Record how the run ended; return the audit chain head."""
    return pipeline.finish_run(_settings(overrides), run_id, status, message, summary)
