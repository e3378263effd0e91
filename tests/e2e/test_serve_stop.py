"""`backorders serve` stops on SIGTERM and ends the flow runs it started cleanly.

A real `prefect server start` on 127.0.0.1 (its own PREFECT_HOME), a real `backorders
serve` process, a real deployment run started with `prefect deployment run`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from backorders import runlock
from backorders.devtools.demo_data import DemoSpec, generate
from tests import cli_process as cp

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a real `prefect server start`: .ci/run runs them
PREFECT = cp.PREFECT


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free port; the environment that points at it."""
    with cp.prefect_server(tmp_path_factory.mktemp("prefect-server-home")) as env:
        yield env


def _flow_run_states(env: dict[str, str]) -> list[tuple[str, str]]:
    """(state type, state message) of every flow run, from the API."""
    r = httpx.post(f"{env['PREFECT_API_URL']}/flow_runs/filter", json={"limit": 10}, timeout=30)
    r.raise_for_status()
    return [(f["state"]["type"], f["state"]["message"] or "") for f in r.json()]


def _wait_for_deployments(env: dict[str, str], n: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = httpx.post(f"{env['PREFECT_API_URL']}/deployments/filter", json={}, timeout=30)
        if r.status_code == 200 and len(r.json()) >= n:
            return
        time.sleep(0.5)
    raise AssertionError("the deployments were not registered")


def test_serve_stops_on_sigterm_and_its_flow_run_ends_interrupted(
    tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, DemoSpec(seed=7))
    serve = cp.Running(
        ["serve", "--landing", str(landing), "--db", str(db), "--cron", "0 2 * * *"], prefect_api
    )
    try:
        _wait_for_deployments(prefect_api, 3)
        started = subprocess.run(
            [PREFECT, "deployment", "run", "backorder-cycle/hourly-feeds"],
            env=prefect_api,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        # the flow run's process takes the run lock when its cycle starts
        deadline = time.monotonic() + 180
        while (held := runlock.holder(db)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert held is not None, serve.output[-3000:]
        flow_process = int(str(held["pid"]))
        # hold the flow run mid-cycle so that the stop surely meets it running
        os.kill(flow_process, signal.SIGSTOP)
        t0 = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):  # gone already: killed, not ended
            os.kill(flow_process, signal.SIGCONT)
        code = serve.wait(timeout=90)
        seconds = time.monotonic() - t0
    finally:
        if serve.proc.poll() is None:
            os.killpg(serve.proc.pid, signal.SIGKILL)

    assert code == 0, serve.output[-3000:]
    assert seconds < 30, f"{seconds:.1f} s from SIGTERM to exit"
    assert cp.wait_gone([flow_process], timeout=10) == []
    assert runlock.holder(db) is None
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("select status, message from runs").fetchall()
    assert [s for s, _ in runs] == ["interrupted"], runs
    [(state, message)] = _flow_run_states(prefect_api)
    assert state == "CANCELLED", (state, message)
