"""Thin Prefect tasks: one per stage. They take ids, paths and settings overrides, never
connections or secrets, and log progress to the Prefect run log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import task_run as current_task_run

from backorders import pipeline
from backorders.settings import Settings, load_settings
from tasks.artifacts import stage_progress


def _settings(overrides: dict[str, Any]) -> Any:
    return load_settings(**overrides)


class TransientSendFailures(RuntimeError):
    """Some sends failed transiently (SendGrid down, 5xx, 429): worth another pass soon."""


# what a retry can cure: a send pass that met a transient failure, transient I/O (a file
# or the database briefly unavailable). Never a gate's decision, a stop, a damaged
# database or a bad setting: those give the same answer however often they are asked.
def retry_safe(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry_condition_fn: retry only what a retry can cure."""
    import duckdb

    from backorders import interrupt
    from backorders.adapters import store
    from backorders.settings import InvalidSettings

    try:
        state.result(raise_on_failure=True)
    except (
        pipeline.GateClosed,
        interrupt.Interrupted,
        store.StoreError,
        InvalidSettings,
        ValueError,
    ):
        return False
    except (TransientSendFailures, duckdb.IOException, OSError):
        return True
    except BaseException:
        return False
    return False


def retrying(t: Task[..., Any], settings: Settings) -> Task[..., Any]:
    """The task with the retries of the settings (tasks that are safe to run again)."""
    return t.with_options(
        retries=settings.task_retries,
        retry_delay_seconds=settings.task_retry_delay_s,
        retry_condition_fn=retry_safe,
    )


@task(name="start-run")
def start_run(
    overrides: dict[str, Any], run_id: str, as_of: datetime, flow_run_id: str | None
) -> None:
    """Record the run as started."""
    pipeline.start_run(_settings(overrides), run_id, as_of, flow_run_id)


@task(name="ingest-landing-zone")
def ingest(
    overrides: dict[str, Any], run_id: str, as_of: datetime, progress_id: str | None = None
) -> dict[str, Any]:
    """Load new landing files into DuckDB; quarantine bad rows; reject unusable files."""
    return pipeline.ingest_stage(
        _settings(overrides), run_id, as_of, stage_progress("ingest", progress_id)
    )


@task(name="validate-inventory")
def validate(
    overrides: dict[str, Any], run_id: str, progress_id: str | None = None
) -> dict[str, Any]:
    """Great Expectations suites on this run's batches, and the inventory accuracy gate."""
    return pipeline.validate_stage(
        _settings(overrides), run_id, stage_progress("validate", progress_id)
    )


@task(name="reconcile")
def reconcile(
    overrides: dict[str, Any],
    run_id: str,
    as_of: datetime,
    progress_id: str | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Book stock, available to promise, incoming supply (the changed skus', or all)."""
    return pipeline.reconcile_stage(
        _settings(overrides), run_id, as_of, stage_progress("reconcile", progress_id), full=full
    )


@task(name="allocate")
def allocate(
    overrides: dict[str, Any],
    run_id: str,
    as_of: datetime,
    progress_id: str | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Set-based allocation by priority (the changed skus, or all); line_status, promises."""
    return pipeline.allocate_stage(
        _settings(overrides), run_id, as_of, stage_progress("allocate", progress_id), full=full
    )


@task(name="replenish")
def replenish(
    overrides: dict[str, Any], run_id: str, as_of: datetime, progress_id: str | None = None
) -> dict[str, Any]:
    """Replenishment advice per sku and location: safety stock, reorder point, what to order."""
    return pipeline.replenish_stage(
        _settings(overrides), run_id, as_of, stage_progress("replenish", progress_id)
    )


@task(name="payments")
def payments(
    overrides: dict[str, Any],
    run_id: str,
    as_of: datetime,
    dry_run: bool,
    progress_id: str | None = None,
) -> dict[str, Any]:
    """Queue payment captures and releases (Stripe) and send them; flag lapsing authorizations."""
    return pipeline.payments_stage(
        _settings(overrides),
        run_id,
        as_of,
        dry_run=dry_run,
        progress=stage_progress("payments", progress_id),
    )


@task(name="communicate")
def communicate(
    overrides: dict[str, Any], run_id: str, dry_run: bool, progress_id: str | None = None
) -> dict[str, Any]:
    """Queue customer emails in the outbox and send them through SendGrid.

    When every failed send failed transiently and a retry is left, raise
    TransientSendFailures: the retry sends only what is still pending or failed
    transiently (the outbox is keyed by message key, a request in doubt is never
    resent). The last attempt returns its summary instead.
    """
    settings = _settings(overrides)
    summary = pipeline.communicate_stage(
        settings, run_id, dry_run=dry_run, progress=stage_progress("communicate", progress_id)
    )
    failed = pipeline.send_failures({"communicate": summary})
    # only when every failure of the pass was transient: a permanent failure (a 401, a bad
    # address) or an outcome in doubt would be passed over by the retry's pass, and the
    # run must still end `succeeded_with_failures` for them
    if (
        failed
        and int(current_task_run.run_count or 1) <= settings.task_retries
        and pipeline.retryable_sends(settings) >= failed
    ):
        raise TransientSendFailures(f"{failed} message(s) failed to send; retrying the pass")
    return summary


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
