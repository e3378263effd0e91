"""The supplier-delay rerun's work, as plain functions (flows/supplier_delay.py sequences them).

A delay reaches the rerun three ways: a `backorders.supplier.delayed` event from outside
(`prefect event emit`, a webhook) with the new date in its payload; a person's run from
the UI with `new_date`; or a supplier_updates file dropped into the landing zone first.
The first two are written as a supplier_updates file into the landing zone
(`supplier_updates/delay-<supplier>-<id>.jsonl`), so that the delay goes through the
contract's ingest rules (unknown PO line, another supplier's PO, an implausible ETA:
quarantined with a reason) and the audit trail (ingested_files, audit_log) like any
file a supplier sends.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from backorders import events
from backorders.adapters import store

# the events read per rerun at most (a burst of one supplier within the window)
MAX_EVENTS = 10_000


class UnknownSupplier(ValueError):
    """The supplier id names no supplier of any purchase order in the database."""


def read_delay_events(trigger_event_id: str, window_s: int) -> tuple[Any, list[Any]]:
    """The triggering event and every delay event of its supplier in its window.

    The deployment trigger fires on a supplier's first event and then ignores that
    supplier's events for `window_s` (its debounce): the run started by the first event
    applies them all, so none is lost. Call this once the window has passed.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.filters import (
        EventFilter,
        EventIDFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(id=EventIDFilter(id=[UUID(trigger_event_id)])), limit=1
        )
        if not page.events:
            raise LookupError(f"event {trigger_event_id} is not in the Prefect API")
        first = page.events[0]
        start = first.occurred
        page = client.read_events(
            filter=EventFilter(
                occurred=EventOccurredFilter(
                    since=start, until=start + timedelta(seconds=window_s + 1)
                ),
                event=EventNameFilter(name=[events.SUPPLIER_DELAYED]),
                resource=EventResourceFilter(id=[first.resource.id]),
            ),
            limit=50,  # the most the API gives per page
        )
        found = list(page.events)
        while page.next_page and len(found) < MAX_EVENTS:
            page = client.read_events_page(str(page.next_page))
            found.extend(page.events)
    return first, found


def updates_from_events(found: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Outside events with a new date -> update requests; and the runs whose own events these were."""
    requests, own_runs = [], set()
    for e in sorted(found, key=lambda e: (e.occurred, str(e.id))):
        payload = e.payload or {}
        if payload.get("origin") == events.ORIGIN_INGEST:
            own_runs.add(str(payload.get("run_id")))
            continue
        requests.append(
            {
                "po_id": payload.get("po_id"),
                "line_no": payload.get("line_no"),
                "new_date": payload.get("new_date"),
                "qty_confirmed": payload.get("qty_confirmed"),
                "reason": payload.get("reason") or f"event {e.id} ({events.SUPPLIER_DELAYED})",
                "reported_at": e.occurred.astimezone(UTC).isoformat(),
            }
        )
    return requests, sorted(own_runs)


def window_text(supplier_id: str, found: int, outside: int, own_runs: list[str]) -> str:
    """The rerun's log line on the delay events of its window: how many from outside, how
    many our own ingest emitted (those runs re-promised already)."""
    text = f"{found} delay event(s) of {supplier_id} in the window: {outside} from outside"
    if found > outside:
        text += (
            f", {found - outside} from our own ingest (run(s) {', '.join(own_runs)}, "
            "which re-promised already)"
        )
    return text


def check_supplier(con: Any, supplier_id: str) -> None:
    """Raise UnknownSupplier unless some purchase order is the supplier's."""
    if store.scalar(
        con, "select count(*) from purchase_orders where supplier_id = $s", {"s": supplier_id}
    ):
        return
    known = [
        r for (r,) in con.execute(
            "select distinct supplier_id from purchase_orders order by 1 limit 10"
        ).fetchall()
    ]  # fmt: skip
    raise UnknownSupplier(
        f"unknown supplier {supplier_id!r}: no purchase order in the database is from it "
        f"(suppliers: {', '.join(known) or 'none: no purchase order loaded yet'}); "
        "nothing was changed"
    )


def update_rows(con: Any, supplier_id: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """supplier_updates rows for the requests; one without a PO line covers the supplier's
    open lines (of its PO, or all of them)."""
    rows = []
    for r in requests:
        if r.get("new_date") is None:
            raise ValueError(
                f"a delay for {supplier_id} without a new date: give new_date (YYYY-MM-DD)"
            )
        if r.get("po_id") and r.get("line_no") is not None:
            lines = [(r["po_id"], int(r["line_no"]))]
        else:
            lines = con.execute(
                store.sql("events/supplier_po_lines"),
                {"supplier_id": supplier_id, "po_id": r.get("po_id")},
            ).fetchall()
        for po_id, line_no in lines:
            rows.append(
                {
                    "supplier_id": supplier_id,
                    "po_id": po_id,
                    "line_no": line_no,
                    "expected_at": str(r["new_date"]),
                    "qty_confirmed": r.get("qty_confirmed"),
                    "reason": r.get("reason"),
                    "reported_at": r["reported_at"],
                }
            )
    return rows


def write_updates(landing: Path, supplier_id: str, tag: str, rows: list[dict[str, Any]]) -> Path:
    """Write the rows as one JSONL file into the landing zone's supplier_updates/ folder."""
    folder = landing / "supplier_updates"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in supplier_id)
    path = folder / f"delay-{safe}-{tag}.jsonl"
    tmp = path.with_name("." + path.name)  # dot files are not picked up by ingest
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)  # ingest never sees half a file
    return path


def lines_moved(con: Any, supplier_id: str, run_id: str) -> list[dict[str, Any]]:
    """The order lines drawing on the supplier's POs whose promise moved in the run."""
    cur = con.execute(
        store.sql("events/supplier_lines_moved"), {"supplier_id": supplier_id, "run_id": run_id}
    )
    cols = [d[0] for d in cur.description]
    return [
        {c: v.isoformat() if isinstance(v, date) else v for c, v in zip(cols, row, strict=True)}
        for row in cur.fetchall()
    ]


def now_tag() -> str:
    """A file-name tag for a delay given by hand."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
