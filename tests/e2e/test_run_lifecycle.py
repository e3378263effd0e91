"""How `backorders run` ends: a stop signal, a kill, a second run, failed sends (exit codes).

A stop signal stops `backorders run`: recorded interrupted, nothing left behind, rerun ok.

Real `backorders run` processes on generated demo data, each with the temporary Prefect
server it starts itself; the signals go to the whole process group, as `timeout` and a
terminal's Ctrl-C send them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import duckdb
import pytest

from backorders.devtools.demo_data import DemoSpec, generate
from tests import cli_process as cp

pytestmark = pytest.mark.e2e
AS_OF = "2026-11-23T06:00:00Z"
# the bound: a stop signal ends the run within 30 s
STOP_BOUND_S = 30


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PREFECT_HOME for the module: only the first run pays the cold start."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo feeds (scale 1)."""
    path = tmp_path_factory.mktemp("demo") / "landing"
    generate(path, DemoSpec(seed=7))
    return path


def _run_args(landing: Path, db: Path) -> list[str]:
    return ["run", "--landing", str(landing), "--db", str(db), "--as-of", AS_OF]


def _server_port(running: cp.Running) -> int:
    m = re.search(r"View at http://127\.0\.0\.1:(\d+)/", running.output)
    assert m, running.output[-3000:]
    return int(m.group(1))


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _port_closes(port: int, timeout: float) -> bool:
    """Poll until nothing answers on `port` (the kernel closes a dead server's socket)."""
    deadline = time.monotonic() + timeout
    while _answers(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _listeners() -> str:
    """Who listens on which port, for a failure message."""
    import subprocess

    return subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout


def _runs(db: Path) -> list[tuple[str, str, str | None]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "select run_id, status, message from runs order by started_at"
        ).fetchall()


def _audit_events(db: Path, entity_id: str) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [
            e
            for (e,) in con.execute(
                "select event from audit_log where entity = 'run' and entity_id = $r order by seq",
                {"r": entity_id},
            ).fetchall()
        ]


def _mid_ingest(landing: Path, db: Path, env: dict[str, str]) -> tuple[cp.Running, list[int]]:
    """A run started in its own session, once ingest has loaded its first file; its children."""
    running = cp.Running(_run_args(landing, db), env)
    running.wait_for("[1/")  # ingest has loaded its first file: a stage is running
    children = cp.descendants(running.proc.pid)
    assert children, "the run has no temporary Prefect server child"
    return running, children


def _stop_mid_ingest(
    landing: Path, db: Path, env: dict[str, str], sig: int
) -> tuple[int, float, cp.Running, list[int]]:
    """Start a run, signal its process group while ingest is between two files."""
    running, children = _mid_ingest(landing, db, env)
    t0 = time.monotonic()
    os.killpg(running.proc.pid, sig)
    code = running.wait(timeout=120)
    return code, time.monotonic() - t0, running, children


# 30-40 s each: in the slow suite, which CI runs (the default suite stays under 10 min)
@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_ends_the_run_interrupted_and_a_rerun_completes(
    sig: int, code: int, tmp_path: Path, landing: Path, prefect_home: Path
) -> None:
    db = tmp_path / "db.duckdb"
    env = cp.clean_env(prefect_home)

    exit_code, seconds, running, children = _stop_mid_ingest(landing, db, env, sig)

    assert exit_code == code, running.output[-3000:]
    assert seconds < STOP_BOUND_S, f"{seconds:.1f} s from the signal to the exit"
    assert cp.wait_gone(children, timeout=10) == [], "a child process outlived the run"
    assert not _answers(_server_port(running)), "the temporary Prefect server still answers"
    assert "Traceback" not in running.output.split("Beginning flow run")[0]
    assert f"interrupted by {signal.Signals(sig).name}" in running.output
    # recorded: runs row, audit row, the Prefect flow run Cancelled with the reason
    [(run_id, status, message)] = _runs(db)
    assert status == "interrupted" and message and signal.Signals(sig).name in message
    assert _audit_events(db, run_id)[-1] == "run_interrupted"
    assert re.search(r"Finished in state Cancelled\('interrupted by", running.output)
    with duckdb.connect(str(db), read_only=True) as con:
        committed = con.execute("select count(*) from ingested_files").fetchone()
    assert committed and committed[0] >= 1  # the files ingested before the stop stay

    rerun = cp.run(_run_args(landing, db), env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert [s for _, s, _ in _runs(db)] == ["interrupted", "succeeded"]


@pytest.mark.slow  # 20-30 s: in the slow suite, which CI runs (the default suite stays under 10 min)
def test_kill_9_leaves_no_prefect_server_and_the_next_run_records_it_interrupted(
    tmp_path: Path, landing: Path, prefect_home: Path
) -> None:
    db = tmp_path / "db.duckdb"
    env = cp.clean_env(prefect_home)
    running, children = _mid_ingest(landing, db, env)
    port = _server_port(running)

    os.kill(running.proc.pid, signal.SIGKILL)
    running.wait(timeout=30)

    # the kernel's parent-death signal kills the server: no orphan, the port is free
    assert cp.wait_gone(children, timeout=STOP_BOUND_S) == []
    assert _port_closes(port, timeout=10), _listeners()
    [(killed, status, _)] = _runs(db)
    assert status == "running"  # nothing could record it

    rerun = cp.run(_run_args(landing, db), env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    runs = _runs(db)
    assert [s for _, s, _ in runs] == ["interrupted", "succeeded"]
    assert "killed or crashed" in (runs[0][2] or "")
    assert "run_interrupted" in _audit_events(db, killed)


@pytest.mark.slow  # 20-30 s: in the slow suite, which CI runs (the default suite stays under 10 min)
def test_a_second_run_and_readers_are_refused_while_a_run_holds_the_database(
    tmp_path: Path, landing: Path, prefect_home: Path
) -> None:
    db = tmp_path / "db.duckdb"
    env = cp.clean_env(prefect_home)
    first, _ = _mid_ingest(landing, db, env)
    # freeze it mid-cycle (it keeps its locks) so that the others surely meet it
    os.killpg(first.proc.pid, signal.SIGSTOP)
    try:
        second = cp.run(_run_args(landing, db), env, timeout=60)
        reader = cp.run(["status", "SO-1", "--db", str(db)], env, timeout=60)
        audit = cp.run(["verify-audit", "--db", str(db)], env, timeout=60)
    finally:
        os.killpg(first.proc.pid, signal.SIGCONT)

    line = f"another backorders run holds {db} (pid {first.proc.pid}, since "
    assert second.returncode == 1 and line in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    for r in (reader, audit):
        assert r.returncode == 1, r.stderr
        assert f"a backorders run is in progress on {db} (pid {first.proc.pid}" in r.stderr
        assert "Traceback" not in r.stderr
    assert first.wait(timeout=240) == 0, first.output[-3000:]
    assert [s for _, s, _ in _runs(db)] == ["succeeded"]  # the refused run left no row


@pytest.mark.slow  # 20-30 s: in the slow suite, which CI runs (the default suite stays under 10 min)
def test_failed_sends_end_the_run_succeeded_with_failures_and_exit_3(
    tmp_path: Path, landing: Path, prefect_home: Path
) -> None:
    from backorders.devtools.sendgrid_server import FakeSendGrid

    db = tmp_path / "db.duckdb"
    with FakeSendGrid(api_key="right") as fake:
        env = cp.clean_env(
            prefect_home,
            SENDGRID_API_KEY="wrong",  # SendGrid answers 401
            BACKORDERS_SENDGRID_HOST=fake.url,
            BACKORDERS_FROM_EMAIL="care@example.com",
        )
        r = cp.run(_run_args(landing, db), env)
        accepted = len(fake.messages)

    assert r.returncode == 3, r.stderr[-3000:]
    assert accepted == 0
    assert "(succeeded_with_failures)" in r.stdout  # the summary's run line
    assert re.search(r"message\(s\) failed to send", r.stderr)
    assert re.search(
        r"Finished in state Completed\('succeeded with failures: \d+ message", r.stderr + r.stdout
    )
    [(run_id, status, message)] = _runs(db)
    assert status == "succeeded_with_failures" and "failed to send" in (message or "")
    assert _audit_events(db, run_id)[-1] == "run_succeeded_with_failures"
    assert "wrong" not in r.stdout + r.stderr  # the key never reaches the output
