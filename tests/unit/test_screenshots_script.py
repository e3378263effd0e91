"""The non-browser parts of docs/screenshots/take.py (the UI screenshot tool of the docs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit
SCRIPTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(f"screenshots_{name}", SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


take = _load("take")
cdp = _load("cdp")


def _artifact(
    key: str | None, created: str, kind: str = "table", id_: str = ""
) -> dict[str, object]:
    return {"id": id_ or f"id-{key}-{created}", "key": key, "type": kind, "created": created}


def _found(**extra: object) -> dict[str, object]:
    return {
        "cycle_run": {"id": "run-1", "name": "indigo-zebra"},
        "rerun": None,
        "artifacts": [],
        "deployments": [
            {"id": "dep-n", "name": "nightly"},
            {"id": "dep-s", "name": "supplier-delay"},
        ],
        "automations": [],
        **extra,
    }


def test_latest_artifact_per_key_is_kept_in_creation_order() -> None:
    arts = [
        _artifact("kpis", "2026-11-23T06:00:03"),
        _artifact("summary", "2026-11-23T06:00:05"),
        _artifact("kpis", "2026-11-23T06:00:04"),
        _artifact(None, "2026-11-23T06:00:01", kind="progress", id_="abcdef1234"),
    ]
    kept = take.latest_per_key(arts)
    assert [(a["key"], a["created"]) for a in kept] == [
        (None, "2026-11-23T06:00:01"),
        ("kpis", "2026-11-23T06:00:04"),
        ("summary", "2026-11-23T06:00:05"),
    ]
    assert take.artifact_name(kept[0]) == "artifact-progress-abcdef12"
    assert take.artifact_name(kept[1]) == "artifact-kpis"


def test_plan_photographs_every_artifact_the_run_page_tabs_and_the_supplier_delay_deployment() -> (
    None
):
    found = _found(
        artifacts=[
            _artifact("backorder-cycle-summary", "2026-11-23T06:00:05", kind="markdown", id_="a1"),
            _artifact("backorder-kpi-fill-rate", "2026-11-23T06:00:04", id_="a2"),
        ]
    )
    shots = {s.name: s for s in take.plan(found)}
    assert shots["flow-run-task-runs"].tab == "Task Runs"
    assert shots["flow-run-logs"].route == "/runs/flow-run/run-1"
    assert shots["artifact-backorder-cycle-summary"].route == "/artifacts/artifact/a1"
    assert shots["artifact-backorder-kpi-fill-rate"].route == "/artifacts/artifact/a2"
    assert shots["flow-run-artifacts"].wait_for == ("backorder-kpi-fill-rate",)  # the first made
    assert shots["deployment-supplier-delay"].route == "/deployments/deployment/dep-s"
    assert "rerun-logs" not in shots and "event-supplier-delayed" not in shots


def test_plan_takes_validation_and_quarantine_from_the_first_cycle() -> None:
    found = _found(
        artifacts=[
            _artifact("backorder-validation", "2026-11-26T06:00:05", id_="second-v"),
            _artifact("backorder-kpis", "2026-11-26T06:00:05", id_="second-k"),
        ],
        first_artifacts=[
            _artifact("backorder-validation", "2026-11-23T06:00:05", id_="first-v"),
            _artifact("backorder-kpis", "2026-11-23T06:00:05", id_="first-k"),
        ],
    )
    shots = {s.name: s for s in take.plan(found)}
    assert shots["artifact-backorder-validation"].route == "/artifacts/artifact/first-v"
    assert shots["artifact-backorder-kpis"].route == "/artifacts/artifact/second-k"


def test_plan_adds_the_automations_and_the_triggered_rerun_when_there_are_some() -> None:
    found = _found(
        automations=[{"id": "au-1", "name": "Backorder run blocked or failed"}],
        rerun={
            "id": "run-2",
            "name": "calm-fox",
            "delay_event": {"id": "ev-1", "occurred": "2026-12-06T22:38:20.1Z"},
        },
    )
    shots = {s.name: s for s in take.plan(found)}
    assert shots["automations"].wait_for == ("Backorder run blocked or failed",)
    assert (
        shots["automation-backorder-run-blocked-or-failed"].route == "/automations/automation/au-1"
    )
    assert shots["rerun-logs"].route == "/runs/flow-run/run-2"
    event = shots["event-supplier-delayed"]
    assert event.route == "/events/event/2026-12-06/ev-1"
    assert event.tab == "Raw" and event.wait_for == ("backorders.supplier.delayed", "new_date")


def test_delay_trigger_is_found_in_an_automation_s_trigger() -> None:
    listening = {
        "name": "x",
        "trigger": {"type": "event", "expect": ["backorders.supplier.delayed"]},
    }
    other = {"name": "y", "trigger": {"type": "event", "expect": ["prefect.flow-run.Failed"]}}
    assert take.delay_trigger_exists([other, listening])
    assert not take.delay_trigger_exists([other])


def test_devtools_port_is_read_from_the_profile(tmp_path: Path) -> None:
    assert cdp.devtools_port(tmp_path) is None  # not written yet
    (tmp_path / "DevToolsActivePort").write_text("41234\n/devtools/browser/abc\n")
    assert cdp.devtools_port(tmp_path) == 41234
    cmd = cdp.chromium_command("/usr/bin/chromium", tmp_path, 1600, 1000)
    assert (
        "--headless" in cmd and "--no-sandbox" in cmd and "--disable-background-networking" in cmd
    )
    assert f"--user-data-dir={tmp_path}" in cmd and "--window-size=1600,1000" in cmd
