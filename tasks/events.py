"""Thin Prefect tasks that emit the contract's events (backorders/events.py)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from backorders import events
from backorders.adapters import store
from backorders.settings import load_settings

# payload rows written to the run log at most; the events carry every one
LOGGED_DELAYS = 20


@task(name="supplier-delay-events")
def supplier_delays(overrides: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Emit `backorders.supplier.delayed` for each PO line this run's updates delayed."""
    settings = load_settings(**overrides)
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        delays = events.detect_supplier_delays(con, run_id)
    summary = events.emit_supplier_delays(delays, run_id)
    logger = get_run_logger()
    for d in delays[:LOGGED_DELAYS]:
        logger.info(
            "supplier delay: %s %s:%s %s -> %s (%s days late, qty %+d, %s open lines of %s)",
            d["supplier_id"], d["po_id"], d["line_no"], d["old_date"], d["new_date"],
            d["days_late"], d["qty_change"], d["lines_affected"], d["sku"],
        )  # fmt: skip
    if delays:
        logger.info(
            "supplier delays: %d PO line(s) of %d supplier(s), %d event(s) emitted",
            summary["po_lines"], len(summary["suppliers"]), summary["events_emitted"],
        )  # fmt: skip
    return summary


@task(name="run-events")
def run_end(overrides: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Emit `backorders.run.<status>` (and `backorders.inventory.inaccurate`); their names."""
    settings = load_settings(**overrides)
    try:
        with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
            gate = events.closed_gate(con, str(summary["run_id"]))
    except Exception as exc:  # the run's own end is recorded: an event never masks it
        get_run_logger().warning("run events: the gate decision could not be read: %s", exc)
        gate = None
    return events.emit_run_end(summary, gate)
