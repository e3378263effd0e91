"""The Prefect events of CONTRACT.md, thin over prefect.events.emit_event.

- `backorders.supplier.delayed` (resource `backorders.supplier.<id>`): one per PO line
  whose effective ETA this run's supplier updates moved later or whose confirmed
  quantity they cut (sql/events/supplier_delays.sql). Our own events say so in their
  payload (`origin: "ingest"`, `run_id`): the run that emitted them has re-promised
  already, so the supplier-delay rerun does not rerun for them (flows/supplier_delay.py).
- `backorders.run.<status>` (resource `backorders.run.<run_id>`): a cycle ended, with the
  headline figures; `backorders.inventory.inaccurate` when the accuracy gate closed.

Without a Prefect API (PREFECT_API_URL unset, no temporary server) emit_event drops
the events; a failure to emit never fails a run (the database is the record).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from backorders.adapters import store

log = logging.getLogger(__name__)

SUPPLIER_DELAYED = "backorders.supplier.delayed"
INVENTORY_INACCURATE = "backorders.inventory.inaccurate"
SUPPLIER_PREFIX = "backorders.supplier."
RUN_PREFIX = "backorders.run."
ORIGIN_INGEST = "ingest"


def supplier_resource(supplier_id: str) -> dict[str, str]:
    """The resource of a supplier's events."""
    return {
        "prefect.resource.id": SUPPLIER_PREFIX + supplier_id,
        "prefect.resource.name": supplier_id,
    }


def supplier_id_of(resource_id: str) -> str:
    """`SUP-04` from `backorders.supplier.SUP-04` (a bare id is returned as it is)."""
    return resource_id.removeprefix(SUPPLIER_PREFIX).strip()


def _run_related(run_id: str) -> list[dict[str, str]]:
    return [
        {
            "prefect.resource.id": RUN_PREFIX + run_id,
            "prefect.resource.role": "backorders-run",
            "prefect.resource.name": run_id,
        }
    ]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _emit(event: str, resource: dict[str, str], payload: dict[str, Any], **kw: Any) -> bool:
    from prefect.events import emit_event

    try:
        return emit_event(event, resource=resource, payload=payload, **kw) is not None
    except Exception as exc:  # an event is a notice: the run's record is the database
        log.warning("could not emit %s: %s", event, exc)
        return False


def detect_supplier_delays(con: Any, run_id: str) -> list[dict[str, Any]]:
    """The PO lines this run's supplier updates delayed or cut (one dict per PO line)."""
    cur = con.execute(store.sql("events/supplier_delays"), {"run_id": run_id})
    cols = [d[0] for d in cur.description]
    return [{c: _plain(v) for c, v in zip(cols, row, strict=True)} for row in cur.fetchall()]


def emit_supplier_delays(delays: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """One `backorders.supplier.delayed` per delayed PO line; a summary for the run."""
    emitted = 0
    for d in delays:
        payload = {k: v for k, v in d.items() if k != "supplier_id"}
        payload.update(origin=ORIGIN_INGEST, run_id=run_id)
        emitted += _emit(
            SUPPLIER_DELAYED,
            supplier_resource(d["supplier_id"]),
            payload,
            related=_run_related(run_id),
        )
    return {
        "po_lines": len(delays),
        "suppliers": sorted({d["supplier_id"] for d in delays}),
        "events_emitted": emitted,
    }


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's headline figures, small enough for an event payload."""
    ingest = summary.get("ingest") or {}
    alloc = summary.get("allocate") or {}
    comm = summary.get("communicate") or {}
    validate = summary.get("validate") or {}
    return {
        "run_id": summary.get("run_id"),
        "as_of": summary.get("as_of"),
        "status": summary.get("status"),
        "message": summary.get("message"),
        "reason": summary.get("reason"),
        "files": ingest.get("files"),
        "rows_loaded": ingest.get("rows_loaded"),
        "rows_quarantined": ingest.get("rows_quarantined"),
        "supplier_delays": (summary.get("supplier_delays") or {}).get("po_lines"),
        "inventory_accuracy": validate.get("inventory_accuracy"),
        "lines_by_status": alloc.get("lines_by_status"),
        "emails_queued": comm.get("queued"),
        "emails_sent": (comm.get("sent") or {}).get("sent"),
    }


def emit_run_end(summary: dict[str, Any], gate: dict[str, Any] | None) -> list[str]:
    """`backorders.run.<status>`, and `backorders.inventory.inaccurate` for a closed gate."""
    run_id = str(summary["run_id"])
    status = str(summary.get("status"))
    # succeeded and succeeded_with_failures are both `completed` (CONTRACT.md)
    name = {"succeeded": "completed", "succeeded_with_failures": "completed"}.get(status, status)
    resource = {"prefect.resource.id": RUN_PREFIX + run_id, "prefect.resource.name": run_id}
    sent = []
    if gate is not None and gate.get("state") == "closed":
        payload = {k: _plain(v) for k, v in gate.items()}
        if _emit(INVENTORY_INACCURATE, resource, {"run_id": run_id, **payload}):
            sent.append(INVENTORY_INACCURATE)
    if _emit(f"backorders.run.{name}", resource, headline(summary)):
        sent.append(f"backorders.run.{name}")
    return sent


def closed_gate(con: Any, run_id: str) -> dict[str, Any] | None:
    """The run's accuracy gate decision when it closed the gate, else None."""
    cur = con.execute(
        "select * from inventory_gate where run_id = $r and state = 'closed'", {"r": run_id}
    )
    row = cur.fetchone()
    if row is None:
        return None
    return {d[0]: _plain(v) for d, v in zip(cur.description, row, strict=True)}
