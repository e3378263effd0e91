"""The whole-cycle guard and the stop request, in one process on a real DuckDB file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backorders import interrupt, lifecycle, runlock
from backorders.adapters import store

pytestmark = pytest.mark.integration


@pytest.fixture
def stop_handlers() -> Iterator[None]:
    """Our SIGTERM/SIGINT handlers for the test; Python's back afterwards."""
    try:
        with lifecycle.stop_signals():
            yield
    finally:
        interrupt.reset()


def test_sigterm_cuts_a_running_statement_and_its_transaction_rolls_back(
    tmp_path: Path, stop_handlers: None
) -> None:
    with store.connect(tmp_path / "db.duckdb") as con:
        con.execute("create table t (x bigint)")
        con.execute("insert into t values (1)")
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with (
            pytest.raises(interrupt.Interrupted) as stopped,
            store.interruptible(con),
            store.transaction(con),
        ):
            con.execute("insert into t values (2)")
            # minutes of work unless cut
            con.execute(
                "insert into t select sum(a.range * b.range) from range(300000) a, range(100000) b"
            )
        assert stopped.value.exit_code == 143
        assert con.execute("select list(x) from t").fetchone() == ([1],)


def test_the_guard_is_reentrant_in_a_process_and_keeps_the_file_locked_between_stages(
    tmp_path: Path,
) -> None:
    db = tmp_path / "db.duckdb"
    with lifecycle.cycle_guard(db, memory_limit="1GB"):
        with lifecycle.cycle_guard(db, memory_limit="1GB"):  # the flow inside the CLI
            pass
        assert runlock.holder(db) is not None
        # a stage's own connection opens and closes; the file stays ours
        store.connect(db).close()
        other = subprocess.run(
            [sys.executable, "-c", f"import duckdb; duckdb.connect({str(db)!r})"],
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and "Could not set lock" in other.stderr
    assert runlock.holder(db) is None


def test_a_run_left_running_is_recorded_interrupted_with_an_audit_row(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with store.connect(tmp_path / "db.duckdb") as con:
        con.execute(
            "insert into runs (run_id, as_of, started_at, status) values ('old', $n, $n, 'running')",
            {"n": now},
        )
        assert lifecycle.settle_abandoned_runs(con, "new", now) == ["old"]
        assert con.execute("select status from runs").fetchall() == [("interrupted",)]
        assert con.execute(
            "select event, entity_id from audit_log order by seq desc limit 1"
        ).fetchone() == ("run_interrupted", "old")
