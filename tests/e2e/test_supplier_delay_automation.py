"""A supplier delay sent as a Prefect event re-promises and emails without a person.

A real `prefect server start` on 127.0.0.1 (its own PREFECT_HOME), one `backorders run`
first (so there is state, and its events to read back), then a real `backorders serve`
and `prefect event emit`: the deployment trigger starts the supplier-delay rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from backorders.devtools.demo_data import DemoSpec, generate
from flows.automations import NAME as NOTIFY
from tests import cli_process as cp
from tests.e2e.test_serve_stop import PREFECT, _wait_for_deployments, prefect_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a real `prefect server start`: .ci/run runs them
__all__ = [
    "prefect_api"
]  # the module's server (`prefect server start`), shared with test_serve_stop


def _api(env: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    r = httpx.post(f"{env['PREFECT_API_URL']}{path}", json=body, timeout=30)
    r.raise_for_status()
    return r.json()


def _events(env: dict[str, str], name: str | None = None) -> list[dict[str, Any]]:
    """Every event of that name (every event: None), read back from the events API."""
    # 50 a page at most (a larger limit is a 422)
    body = {"filter": {"event": {"name": [name]}} if name else {}, "limit": 50}
    page = _api(env, "/events/filter", body)
    found = list(page["events"])
    while page.get("next_page"):
        page = httpx.get(page["next_page"], timeout=30).json()
        found.extend(page["events"])
    return found


def _eventually(
    env: dict[str, str], name: str, n: int = 1, resource: str | None = None
) -> list[dict[str, Any]]:
    """The events of that name (about `resource`, if given) once at least `n` are stored.

    The server persists events in batches; the module's server is shared, so events of an
    earlier test (another automation's actions) must not end the wait early.
    """
    deadline = time.monotonic() + 60
    while True:
        found = [
            e
            for e in _events(env, name)
            if resource is None or e["resource"]["prefect.resource.id"] == resource
        ]
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(1)


def _stop(serve: cp.Running) -> None:
    serve.proc.send_signal(signal.SIGTERM)
    try:
        serve.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(serve.proc.pid, signal.SIGKILL)
        serve.wait(timeout=10)


def _delayed_po_line(db: Path) -> tuple[str, str, int, Any]:
    """A real supplier's open PO line that the last allocation promised lines from."""
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "select po.supplier_id, po.po_id, po.line_no, max(a.promised_date) as eta "
            "from allocations a join purchase_orders po "
            "  on a.supply_ref = po.po_id || ':' || po.line_no "
            "where a.supply_kind = 'po' and po.status = 'open' "
            "group by all order by count(*) desc, po.po_id, po.line_no limit 1"
        ).fetchone()
    assert row is not None, "the first cycle promised no line from a PO"
    return row


def test_a_supplier_delay_event_starts_the_rerun_that_re_promises_and_emails(
    tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    env = {**prefect_api, "BACKORDERS_SUPPLIER_DELAY_WINDOW_S": "3"}
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, DemoSpec(seed=7))
    first = cp.run(["run", "--landing", str(landing), "--db", str(db)], env, timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]

    # the first cycle's own events, read back from the server
    with duckdb.connect(str(db), read_only=True) as con:
        run_id, summary = con.execute("select run_id, summary from runs").fetchone()
    delays = json.loads(summary)["supplier_delays"]
    own = [
        e for e in _eventually(env, "backorders.supplier.delayed", delays["po_lines"])
        if e["payload"].get("run_id") == run_id
    ]  # fmt: skip
    assert delays["po_lines"] > 0 and len(own) == delays["po_lines"]
    assert {e["resource"]["prefect.resource.id"] for e in own} == {
        f"backorders.supplier.{s}" for s in delays["suppliers"]
    }
    assert {"po_id", "line_no", "old_date", "new_date", "days_late", "lines_affected"} <= set(
        own[0]["payload"]
    )
    [completed] = _eventually(env, "backorders.run.completed")
    assert completed["resource"]["prefect.resource.id"] == f"backorders.run.{run_id}"
    assert completed["payload"]["lines_by_status"]

    supplier, po_id, line_no, promised = _delayed_po_line(db)
    new_date = promised + timedelta(days=21)
    serve = cp.Running(["serve", "--landing", str(landing), "--db", str(db)], env)
    try:
        _wait_for_deployments(env, 3)
        serve.wait_for("serving")
        emitted = subprocess.run(
            [
                PREFECT, "event", "emit", "backorders.supplier.delayed",
                "--resource", json.dumps({"prefect.resource.id": f"backorders.supplier.{supplier}"}),
                "--payload", json.dumps(
                    {"po_id": po_id, "line_no": line_no, "new_date": new_date.isoformat()}
                ),
            ],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert emitted.returncode == 0, emitted.stderr
        event_id = emitted.stdout.split("with ID")[-1].strip()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = _api(
                env,
                "/flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}},
            )
            # the first cycle's own delay events may start reruns too (they end "nothing
            # to rerun"): the one that counts is the run of our event
            rerun = [r for r in runs if r["parameters"].get("event_id") == event_id]
            if rerun:
                break
            time.sleep(1)
        else:
            raise AssertionError(
                f"no supplier-delay rerun ended; serve said:\n{serve.output[-4000:]}"
            )
    finally:
        _stop(serve)

    [run] = rerun
    assert run["parameters"]["supplier_id"] == f"backorders.supplier.{supplier}"
    assert run["state"]["type"] == "COMPLETED", (run["state"], serve.output[-4000:])
    assert run["created_by"]["type"] == "AUTOMATION", run["created_by"]
    assert f"{supplier}: 1 supplier update(s) applied" in run["state"]["message"]
    with duckdb.connect(str(db), read_only=True) as con:
        rerun_id = con.execute(
            "select run_id from runs where summary->>'reason' like 'rerun after supplier delay%'"
        ).fetchone()[0]
        moved = con.execute(
            "select pc.order_id, pc.line_no, pc.new_promised_date, ls.promised_date "
            "from promise_changes pc join line_status ls using (order_id, line_no) "
            "where pc.run_id = $r and pc.change = 'later' and pc.order_id in ("
            "  select order_id from allocations where supply_ref = $ref)",
            {"r": rerun_id, "ref": f"{po_id}:{line_no}"},
        ).fetchall()
        queued = con.execute(
            "select count(*) from outbox where run_id = $r "
            "and kind in ('promise_changed', 'delay_apology') and order_id in ("
            "  select order_id from promise_changes where run_id = $r and change = 'later')",
            {"r": rerun_id},
        ).fetchone()[0]
        applied = con.execute(
            "select count(*) from supplier_updates where po_id = $p and line_no = $l "
            "and expected_at = $d",
            {"p": po_id, "l": line_no, "d": new_date},
        ).fetchone()[0]
    assert applied == 1
    assert moved and all(new == now and new > promised for _, _, new, now in moved), moved
    assert queued > 0

    # serve again: the notification automation and the trigger are not duplicated
    again = cp.Running(["serve", "--landing", str(landing), "--db", str(db)], env)
    try:
        again.wait_for("serving")
    finally:
        _stop(again)
    automations = _api(env, "/automations/filter", {})
    names = [a["name"] for a in automations]
    assert names.count(NOTIFY) == 1, names
    assert names.count("supplier-delay-rerun on backorders.supplier.delayed") == 1, names


def test_a_blocked_run_emits_its_events_and_the_notification_automation_acts(
    tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from backorders.settings import load_settings
    from flows.automations import ensure_notification_automation

    with temporary_settings(updates={PREFECT_API_URL: prefect_api["PREFECT_API_URL"]}):
        automation = ensure_notification_automation(load_settings())
        assert ensure_notification_automation(load_settings()).id == automation.id
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, DemoSpec(seed=7))
    env = {**prefect_api, "BACKORDERS_MIN_INVENTORY_ACCURACY": "1.0"}

    blocked = cp.run(["run", "--landing", str(landing), "--db", str(db)], env, timeout=240)

    assert blocked.returncode == 1, blocked.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        [(run_id,)] = con.execute("select run_id from runs where status = 'blocked'").fetchall()
    resource = f"backorders.run.{run_id}"
    [ended] = _eventually(env, "backorders.run.blocked", resource=resource)
    assert "inventory accuracy" in ended["payload"]["message"]
    [gate] = _eventually(env, "backorders.inventory.inaccurate", resource=resource)
    assert gate["payload"]["state"] == "closed" and gate["payload"]["accuracy"] < 1.0
    acted = _eventually(
        env, "prefect.automation.action.executed", resource=f"prefect.automation.{automation.id}"
    )
    assert acted, "the notification automation did not act on the blocked run"


def test_our_own_ingest_delay_events_start_reruns_that_end_with_nothing_to_rerun(
    tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    # a window long enough that each supplier's events surely fall into one bucket
    env = {**prefect_api, "BACKORDERS_SUPPLIER_DELAY_WINDOW_S": "20"}
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, DemoSpec(seed=7))
    serve = cp.Running(["serve", "--landing", str(landing), "--db", str(db)], env)
    try:
        _wait_for_deployments(env, 3)
        serve.wait_for("serving")
        cycle = cp.run(["run", "--landing", str(landing), "--db", str(db)], env, timeout=240)
        assert cycle.returncode == 0, cycle.stderr[-3000:]
        with duckdb.connect(str(db), read_only=True) as con:
            run_id, summary = con.execute("select run_id, summary from runs").fetchone()
        delays = json.loads(summary)["supplier_delays"]
        assert delays["po_lines"] > 0, "the demo's supplier updates delayed no PO line"
        own = {
            e["id"] for e in _eventually(env, "backorders.supplier.delayed", delays["po_lines"])
            if e["payload"].get("run_id") == run_id
        }  # fmt: skip
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            ended = _api(
                env,
                "/flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}},
            )
            reruns = [r for r in ended if r["parameters"].get("event_id") in own]
            if len(reruns) >= len(delays["suppliers"]):
                break
            time.sleep(1)
    finally:
        _stop(serve)

    # the deployment trigger cannot tell our events from outside ones (docs/operations.md,
    # "Our own delay events start reruns too"): one rerun per supplier, each ends at once
    by_supplier = {r["parameters"]["supplier_id"].removeprefix("backorders.supplier."): r
                   for r in reruns}  # fmt: skip
    assert sorted(by_supplier) == delays["suppliers"] and len(reruns) == len(by_supplier)
    for sid, r in by_supplier.items():
        assert r["state"]["type"] == "COMPLETED", r["state"]
        assert r["state"]["message"].startswith(
            f"nothing to rerun for {sid}: its delay events came from run(s) {run_id}"
        )
    with duckdb.connect(str(db), read_only=True) as con:  # and none of them ran a cycle
        assert con.execute("select count(*) from runs").fetchone() == (1,)
