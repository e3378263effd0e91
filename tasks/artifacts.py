"""Thin Prefect glue for what ops see: the progress artifact and the run's table artifacts.

The rows come from backorders.ops_artifacts (pure of Prefect); this module only
publishes them under their stable keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from backorders import ops_artifacts as oa
from backorders.adapters import store
from backorders.settings import load_settings


def start_progress() -> str:
    """Create the run's progress artifact at 0 %; its id, for the tasks to update."""
    return str(
        create_progress_artifact(0.0, key=oa.PROGRESS_KEY, description="backorder cycle: starting")
    )


def set_progress(progress_id: str | None, percent: float, description: str) -> None:
    """Move the progress artifact (never fails the run: progress is for the eye)."""
    if not progress_id:
        return
    try:
        update_progress_artifact(UUID(progress_id), percent, description=description)
    except Exception as exc:  # the API went away for a moment: the run goes on
        get_run_logger().warning("progress artifact not updated: %s", type(exc).__name__)


def stage_progress(stage: str, progress_id: str | None) -> Callable[[str], None]:
    """The stage's progress callback: each line to the run log, how far to the artifact."""
    log = get_run_logger().info
    tracker = oa.Progress()
    set_progress(progress_id, tracker.enter(stage), f"{stage}: started")
    last = [tracker.percent]

    def progress(line: str) -> None:
        log(line)
        percent = tracker.note(line)
        # one update per whole percent at most: a long send loop reports every batch
        if percent is not None and int(percent) > int(last[0]):
            last[0] = percent
            set_progress(progress_id, percent, f"{stage}: {line.strip()[:120]}")

    return progress


def _table(rows: list[dict[str, Any]], key: str, what: str, empty: dict[str, Any]) -> None:
    # an empty table draws nothing in the UI: one row that says so
    create_table_artifact(oa.ui_rows(rows or [empty]), key=key, description=what)


@task(name="publish-artifacts")
def publish(overrides: dict[str, Any], run_id: str) -> list[str]:
    """KPIs, validation, quarantine and replenishment of the run as table artifacts; their keys."""
    settings = load_settings(**overrides)
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        kpis = oa.kpi_artifacts(con)
        validation = oa.validation_rows(con, run_id)
        quarantine = oa.quarantine_rows(con, run_id)
        replenishment = oa.replenishment_rows(con, run_id)
    for key, rows in kpis.items():
        _table(rows, key, f"{oa.LINKED[key]} (run {run_id})", {"note": "none yet"})
    _table(
        validation,
        oa.VALIDATION_KEY,
        f"Great Expectations suites of run {run_id}",
        {"suite": "-", "passed": "no suite ran"},
    )
    _table(
        quarantine,
        oa.QUARANTINE_KEY,
        f"rows quarantined by run {run_id}, by feed and reason",
        {"feed": "-", "reason": "nothing quarantined", "rows": 0, "files": 0},
    )
    _table(
        replenishment,
        oa.REPLENISH_KEY,
        f"suggested orders of run {run_id}, furthest below the reorder point first "
        f"(at most {oa.REPLENISH_ROWS}; all: backorders replenish)",
        {"sku": "-", "reason": "no sku/location below its reorder point"},
    )
    return [*kpis, oa.VALIDATION_KEY, oa.QUARANTINE_KEY, oa.REPLENISH_KEY]
