"""The supplier-delay rerun: apply a supplier's delay, rerun the cycle, report the lines moved.

Started by the deployment trigger on `backorders.supplier.delayed` (flows/deployments.py,
with `event_id`), or by a person from the UI (a supplier id, and a new date or a file
dropped into the landing zone first). Docs: docs/operations.md, "Supplier delays".
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from backorders import events, lifecycle, runlock
from backorders import supplier_delay as sd
from backorders.adapters import store
from backorders.settings import load_settings
from flows.backorder_cycle import backorder_cycle

# moved lines written to the log at most (all of them are in the return value)
LOGGED_LINES = 50


@flow(name="supplier-delay-rerun", log_prints=True)
def supplier_delay_rerun(
    supplier_id: str,
    note: str = "",
    new_date: date | None = None,
    po_id: str | None = None,
    line_no: int | None = None,
    qty_confirmed: int | None = None,
    event_id: str | None = None,
    landing: str | None = None,
    db: str | None = None,
    dry_run: bool = False,
) -> State:
    """Apply the supplier's delay (event payloads or `new_date`), rerun the cycle, report."""
    logger = get_run_logger()
    overrides = {k: v for k, v in {"landing": landing, "db": db}.items() if v is not None}
    settings = load_settings(**overrides)
    sid = events.supplier_id_of(supplier_id)
    requests: list[dict[str, Any]] = []
    tag = sd.now_tag()
    if event_id:
        first, found = _events_of_window(event_id, settings.supplier_delay_window_s)
        requests, own_runs = sd.updates_from_events(found)
        tag = f"{first.occurred.astimezone(UTC):%Y%m%dT%H%M%SZ}-{str(first.id)[:8]}"
        logger.info(sd.window_text(sid, len(found), len(requests), own_runs))
        if not requests:
            message = (
                f"nothing to rerun for {sid}: its delay events came from run(s) "
                f"{', '.join(own_runs)}, which ingested the updates and re-promised already"
            )
            return Completed(message=message, data={"supplier_id": sid, "rerun": False})
    if new_date is not None:
        requests.append(
            {
                "po_id": po_id,
                "line_no": line_no,
                "new_date": new_date.isoformat(),
                "qty_confirmed": qty_confirmed,
                "reason": note or "supplier delay entered by hand (supplier-delay rerun)",
                "reported_at": datetime.now(UTC).isoformat(),
            }
        )
    try:
        with lifecycle.cycle_guard(settings.db, memory_limit=settings.memory_limit):
            return _rerun(sid, requests, tag, note, overrides, settings, dry_run)
    except (sd.UnknownSupplier, ValueError, runlock.RunInProgress) as exc:
        return Failed(message=str(exc))


def _events_of_window(event_id: str, window_s: int) -> tuple[Any, list[Any]]:
    """Wait for the trigger's window to close, then read its events (see read_delay_events)."""
    first, _ = sd.read_delay_events(event_id, 0)
    closes = first.occurred + timedelta(seconds=window_s)
    # events are stored a moment after they occur: a little margin past the window
    wait = (closes - datetime.now(UTC)).total_seconds() + 2
    if wait > 0:
        get_run_logger().info("waiting %.0f s for the supplier's other delay events", wait)
        time.sleep(wait)
    return sd.read_delay_events(event_id, window_s)


def _rerun(
    sid: str,
    requests: list[dict[str, Any]],
    tag: str,
    note: str,
    overrides: dict[str, Any],
    settings: Any,
    dry_run: bool,
) -> State:
    """Under the run lock: check the supplier, write its updates, run the cycle, report."""
    logger = get_run_logger()
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        sd.check_supplier(con, sid)
        rows = sd.update_rows(con, sid, requests)
    if rows:
        path = sd.write_updates(settings.landing, sid, tag, rows)
        logger.info("wrote %d supplier update(s) of %s to %s", len(rows), sid, path)
    reason = f"rerun after supplier delay: {sid}" + (f" ({note})" if note else "")
    state = backorder_cycle(
        landing=overrides.get("landing"),
        db=overrides.get("db"),
        dry_run=dry_run,
        reason=reason,
        return_state=True,
    )
    if not state.is_completed():
        return state
    summary = state.result()
    with store.connect(settings.db, memory_limit=settings.memory_limit) as con:
        moved = sd.lines_moved(con, sid, summary["run_id"])
    for m in moved[:LOGGED_LINES]:
        logger.info(
            "%s line %s: %s, %s -> %s", m["order_id"], m["line_no"], m["change"],
            m["old_promised_date"], m["new_promised_date"],
        )  # fmt: skip
    later = sum(1 for m in moved if m["change"] in ("later", "now_unpromised"))
    message = (
        f"{sid}: {len(rows)} supplier update(s) applied; run {summary['run_id']} "
        f"{summary['status']}; {len(moved)} line(s) of its POs changed promise ({later} later "
        f"or unpromised); {(summary.get('communicate') or {}).get('queued', 0)} message(s) queued"
    )
    logger.info(message)
    return Completed(
        message=message,
        data={
            "supplier_id": sid,
            "rerun": True,
            "updates_applied": len(rows),
            "run_id": summary["run_id"],
            "status": summary["status"],
            "lines_moved": moved,
        },
    )
