"""A `backorders run` stopped by SIGTERM says so with a Prefect event, as a finished one does.

A real `backorders run` process against a real `prefect server start` on 127.0.0.1 (its
own PREFECT_HOME), sending through the local SendGrid server made slow (latency mode), so
that the stop surely meets the run in its send stage.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import duckdb
import pytest

from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from tests import cli_process as cp
from tests.e2e.test_serve_stop import prefect_api
from tests.e2e.test_supplier_delay_automation import _events, _eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a real `prefect server start`: .ci/run runs them
__all__ = ["prefect_api"]  # the module's server (`prefect server start`)
KEY = "SG.interrupted-run-key-0123456789"
AS_OF = "2026-11-23T06:00:00Z"


def test_a_run_stopped_by_sigterm_emits_run_interrupted_with_its_figures_and_no_secret(
    tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, DemoSpec(seed=7))
    # 2 s per request, 2 in flight: the demo's emails take minutes, the stop meets them
    with FakeSendGrid(api_key=KEY, latency_s=2.0) as fake:
        env = {
            **prefect_api,
            "SENDGRID_API_KEY": KEY,
            "BACKORDERS_SENDGRID_HOST": fake.url,
            "BACKORDERS_FROM_EMAIL": "care@shop.test",
            "BACKORDERS_SEND_CONCURRENCY": "2",
        }
        run = cp.Running(["run", "--landing", str(landing), "--db", str(db), "--as-of", AS_OF], env)
        try:
            run.wait_for("outbox:")  # queued: the send loop starts now
            deadline = time.monotonic() + 120
            while fake.peak_in_flight == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert fake.peak_in_flight > 0, run.output[-3000:]
            os.killpg(run.proc.pid, signal.SIGTERM)  # as `timeout` or a shell job's stop does
            code = run.wait(timeout=120)
            accepted = fake.received_keys()
        finally:
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.wait(timeout=30)

    assert code == 143, run.output[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        [(run_id, status, message)] = con.execute(
            "select run_id, status, message from runs"
        ).fetchall()
    assert status == "interrupted" and "SIGTERM" in message
    resource = f"backorders.run.{run_id}"
    [event] = _eventually(prefect_api, "backorders.run.interrupted", resource=resource)
    payload = event["payload"]
    assert payload["run_id"] == run_id and payload["status"] == "interrupted"
    assert "interrupted by SIGTERM" in payload["message"]
    # the figures of the stages that finished before the stop
    assert payload["files"]["loaded"] > 0 and payload["rows_loaded"] > 0
    assert payload["lines_by_status"]["promised"] > 0
    # and of the send stage it stopped: what it queued, what SendGrid took before the stop
    assert payload["emails_queued"] > 0
    assert payload["emails_sent"] == sum(accepted.values()) < payload["emails_queued"]
    for other in ("completed", "blocked", "failed"):  # the run ended once, interrupted
        assert _events(prefect_api, f"backorders.run.{other}") == []
    # the key went to SendGrid with every request, never into an event
    every = _events(prefect_api)
    assert event["id"] in {e["id"] for e in every}
    assert KEY not in json.dumps(every)
