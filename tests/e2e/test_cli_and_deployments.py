"""The command line and the deployments, against the real Prefect API."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from backorders.cli import main
from backorders.devtools.demo_data import DemoSpec, generate
from flows.deployments import build_deployments

pytestmark = pytest.mark.e2e
SPEC = DemoSpec(seed=5)


def test_run_status_and_verify_audit_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    code = main(
        ["run", "--landing", str(landing), "--db", str(db), "--as-of", "2026-11-23T06:00:00Z"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "lines backordered" in out and "rows quarantined         8" in out

    with duckdb.connect(str(db), read_only=True) as con:
        order_id = con.execute(
            "select order_id from line_status where status = 'promised' order by 1 limit 1"
        ).fetchone()[0]
    assert main(["status", order_id, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"order {order_id}" in out and "promised" in out and "why: rank" in out
    assert main(["explain", order_id, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "open lines for" in out and "in drawing order" in out and "rule:" in out
    assert main(["explain", order_id, "99", "--db", str(db)]) == 1
    assert "no such open or recent line" in capsys.readouterr().err
    assert main(["verify-audit", "--db", str(db)]) == 0
    assert "intact" in capsys.readouterr().out

    # a dry run (no SendGrid key): every email it would have sent can be read, rendered
    assert main(["emails", "--db", str(db), "--format", "jsonl", "--limit", "0"]) == 0
    emails = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with duckdb.connect(str(db), read_only=True) as con:
        queued = dict(
            con.execute(
                "select email_key, list(distinct order_id order by order_id) from outbox "
                "group by email_key"
            ).fetchall()
        )
    assert {e["email_key"]: e["order_ids"] for e in emails} == queued
    for e in emails:
        assert e["status"] == "suppressed" and e["reason"]
        assert e["subject"] and all(o in e["text"] and o in e["html"] for o in e["order_ids"])
    key = emails[0]["email_key"]
    assert main(["emails", "--db", str(db), "--email", key]) == 0
    out = capsys.readouterr().out
    assert f"== email {key}" in out and f"Subject: {emails[0]['subject']}" in out
    assert emails[0]["text"] in out


def test_run_exits_1_with_the_reason_when_the_accuracy_gate_closes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    monkeypatch.setenv("BACKORDERS_MIN_INVENTORY_ACCURACY", "1.0")
    code = main(
        ["run", "--landing", str(landing), "--db", str(db), "--as-of", "2026-11-23T06:00:00Z"]
    )
    assert code == 1
    assert "inventory accuracy" in capsys.readouterr().err


def test_deployments_register_with_schedules_and_a_supplier_rerun(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    deployments = build_deployments(
        landing=tmp_path / "l", db=tmp_path / "d.duckdb", cron="0 3 * * *"
    )
    ids = [d.apply() for d in deployments]
    with get_client(sync_client=True) as client:
        got = {client.read_deployment(i).name: client.read_deployment(i) for i in ids}
    assert set(got) == {"nightly", "hourly-feeds", "supplier-delay"}
    assert got["nightly"].schedules[0].schedule.cron == "0 3 * * *"
    where = {"landing": str(tmp_path / "l"), "db": str(tmp_path / "d.duckdb")}
    # the nightly run is a full allocation (the oracle); the hourly one is incremental
    assert got["nightly"].parameters == {**where, "full": True}
    assert got["hourly-feeds"].parameters == where
    rerun_params = got["supplier-delay"].parameter_openapi_schema["properties"]
    assert (
        "supplier_id" in rerun_params
        and "supplier_id" in got["supplier-delay"].parameter_openapi_schema["required"]
    )
