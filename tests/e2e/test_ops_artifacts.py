"""What ops see, under a real Prefect API: every artifact of a run, the key from a Secret
block, a send pass retried after SendGrid was down; read back through the Prefect client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import pytest

from backorders import ops_artifacts as oa
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from expectations import FEED_SUITES
from flows.backorder_cycle import backorder_cycle
from tests.e2e.test_supplier_delay_automation import _events

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a real `prefect server start`: .ci/run runs them
SPEC = DemoSpec(seed=11, scale=1)
KEY = "SG.secret-from-a-prefect-block-0123456789"
BLOCK = "backorders-sendgrid-e2e"


def _flow_run_id(db: Path, run_id: str) -> UUID:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "select flow_run_id from runs where run_id = $r", {"r": run_id}
        ).fetchone()
    assert row and row[0]
    return UUID(row[0])


def _artifacts(flow_run_id: UUID) -> dict[str, Any]:
    """The run's artifacts by key (the latest version of each)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts if a.key}


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One sending cycle whose SendGrid key comes only from a Prefect Secret block."""
    from prefect.blocks.system import Secret

    from backorders.prefect_server import _drain_client_workers

    root = tmp_path_factory.mktemp("secret")
    landing, db = root / "landing", root / "backorders.duckdb"
    generate(landing, SPEC)
    Secret(value=KEY).save(BLOCK, overwrite=True)
    with FakeSendGrid(api_key=KEY) as fake, pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKORDERS_SENDGRID_SECRET_BLOCK", BLOCK)
        mp.setenv("BACKORDERS_SENDGRID_HOST", fake.url)
        mp.setenv("BACKORDERS_FROM_EMAIL", "care@shop.test")
        summary = backorder_cycle(landing=str(landing), db=str(db), as_of=SPEC.as_of)
        received = fake.received_keys()
    _drain_client_workers()  # the run's logs and events reach the API before we read them
    yield {"db": db, "summary": summary, "received": received}


def test_sendgrid_key_from_a_secret_block_is_used_and_never_shown(
    secret_run: dict[str, Any],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL

    db, summary = secret_run["db"], secret_run["summary"]
    sent = summary["communicate"]["sent"]["sent"]
    assert sent > 100 and sum(secret_run["received"].values()) == sent  # the key worked
    flow_run_id = _flow_run_id(db, summary["run_id"])
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
        artifacts = client.read_artifacts()
    # every event the server holds (a limit above 50 was a 422, whose text held no key)
    events = json.dumps(_events({"PREFECT_API_URL": str(PREFECT_API_URL.value())}))
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {
            name: " ".join(str(r) for r in con.execute(f"select * from {name}").fetchall())
            for name in ("runs", "audit_log", "outbox", "outbox_emails")
        }
    assert logs and artifacts and "backorders.run.completed" in events
    assert KEY not in " ".join(log.message for log in logs)
    assert KEY not in " ".join(str(a.data) + str(a.description) for a in artifacts)
    assert KEY not in events
    for name, text in tables.items():
        assert KEY not in text, name


def test_every_run_publishes_its_artifacts_and_progress_reaches_100(
    secret_run: dict[str, Any],
) -> None:
    db, summary = secret_run["db"], secret_run["summary"]
    arts = _artifacts(_flow_run_id(db, summary["run_id"]))
    summary_md = str(arts[oa.SUMMARY_KEY].data)
    assert "lines backordered" in summary_md
    assert all(f"/artifacts/key/{key}" in summary_md for key in oa.LINKED)
    assert arts[oa.PROGRESS_KEY].type == "progress" and arts[oa.PROGRESS_KEY].data == 100
    kpis = json.loads(str(arts[oa.KPIS_KEY].data))
    assert [r["kpi"] for r in kpis] == [
        "line fill rate",
        "unit fill rate",
        "promise accuracy",
        "average days late",
    ]
    assert kpis[0]["value"].endswith("%")
    for key in (oa.AGING_KEY, oa.SUPPLIERS_KEY, oa.TOP_SKUS_KEY):
        assert arts[key].type == "table" and json.loads(str(arts[key].data))
    validation = json.loads(str(arts[oa.VALIDATION_KEY].data))
    assert all(r["passed"] in ("yes", "NO") and r["rows_checked"] is not None for r in validation)
    quarantine = json.loads(str(arts[oa.QUARANTINE_KEY].data))
    with duckdb.connect(str(db), read_only=True) as con:
        in_db = con.execute(
            "select feed, count(*) from quarantine where run_id = $r group by all order by all",
            {"r": summary["run_id"]},
        ).fetchall()
        suites = con.execute(
            "select suite, success from validation_results where run_id = $r order by all",
            {"r": summary["run_id"]},
        ).fetchall()
    assert len(suites) >= len(FEED_SUITES)
    assert sorted((r["suite"], r["passed"] == "yes") for r in validation) == suites
    by_feed: dict[str, int] = {}
    for r in quarantine:
        by_feed[r["feed"]] = by_feed.get(r["feed"], 0) + r["rows"]
    assert in_db and sorted(by_feed.items()) == in_db


def _reopen_sendgrid_when_communicate_awaits_retry(
    fake: FakeSendGrid, stop: threading.Event
) -> None:
    """SendGrid is down (503) until the communicate task's first attempt has failed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        while not stop.wait(0.2):
            runs = client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="communicate"))
            )
            if any(r.state and r.state.name == "AwaitingRetry" for r in runs):
                fake.set_failure_rate(0.0, ["503"], seed=1)
                return


def test_a_send_pass_that_met_sendgrid_down_is_retried_and_sends_each_email_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "backorders.duckdb"
    generate(landing, SPEC)
    with FakeSendGrid(api_key=KEY) as fake:
        monkeypatch.setenv("SENDGRID_API_KEY", KEY)
        monkeypatch.setenv("BACKORDERS_SENDGRID_HOST", fake.url)
        monkeypatch.setenv("BACKORDERS_FROM_EMAIL", "care@shop.test")
        monkeypatch.setenv("BACKORDERS_SEND_MAX_ATTEMPTS", "1")  # no retry inside the pass
        monkeypatch.setenv("BACKORDERS_TASK_RETRY_DELAY_S", "3")
        monkeypatch.setenv("BACKORDERS_TASK_RETRIES", "3")
        fake.set_failure_rate(1.0, ["503"], seed=1)
        stop = threading.Event()
        watcher = threading.Thread(
            target=_reopen_sendgrid_when_communicate_awaits_retry, args=(fake, stop), daemon=True
        )
        watcher.start()
        try:
            summary = backorder_cycle(landing=str(landing), db=str(db), as_of=SPEC.as_of)
        finally:
            stop.set()
            watcher.join(timeout=30)
        keys = fake.received_keys()
    with duckdb.connect(str(db), read_only=True) as con:
        outbox = dict(con.execute("select status, count(*) from outbox group by all").fetchall())
        sent_events = con.execute(
            "select count(*), count(distinct entity_id) from audit_log where event = 'message_sent'"
        ).fetchone()
    assert summary["status"] == "succeeded"
    assert summary["communicate"]["sent"]["failed"] == 0  # the retry's pass failed nothing
    assert outbox.get("failed", 0) == 0 and outbox["sent"] == len(keys) > 100
    assert max(keys.values()) == 1  # nothing sent twice
    assert sent_events is not None and sent_events[0] == sent_events[1]
