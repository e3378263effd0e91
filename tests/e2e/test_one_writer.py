"""Two `backorders run` processes on one database through one real `prefect server start`.

The second waits for the first on the database's Prefect concurrency limit
(backorders.writer_slot) instead of meeting DuckDB's lock; the data ends as one run after
the other would leave it, and every email goes out once (the local SendGrid stand-in).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from backorders import writer_slot
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from tests import cli_process as cp

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a real `prefect server start`: .ci/run runs them
AS_OF = "2026-11-23T06:00:00Z"
KEY = "SG.one-writer-test-key"


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real `prefect server start` both processes talk to."""
    with cp.prefect_server(tmp_path_factory.mktemp("prefect-server-home")) as env:
        yield env


def _args(landing: Path, db: Path) -> list[str]:
    return ["run", "--landing", str(landing), "--db", str(db), "--as-of", AS_OF]


def _state(db: Path) -> dict[str, object]:
    """What the runs left, independent of run ids: statuses, files, lines, the outbox."""
    with duckdb.connect(str(db), read_only=True) as con:
        q = con.execute
        return {
            "runs": [s for (s,) in q("select status from runs order by started_at").fetchall()],
            "files_per_run": [
                json.loads(f)
                for (f,) in q(
                    "select (summary->'ingest'->'files')::varchar from runs order by started_at"
                ).fetchall()
            ],
            "line_status": q(
                "select order_id, line_no, qty_allocated, qty_promised, promised_date, status "
                "from line_status order by all"
            ).fetchall(),
            "allocations_per_run": q(
                "select r.n, count(a.run_id) from (select run_id, row_number() over "
                "(order by started_at) n from runs) r left join allocations a using (run_id) "
                "group by r.n order by r.n"
            ).fetchall(),
            "outbox": q("select status, count(*) from outbox group by all order by all").fetchall(),
        }


def test_two_runs_triggered_together_take_turns_and_leave_what_one_after_the_other_leaves(
    tmp_path: Path, shared_api: dict[str, str]
) -> None:
    landing = tmp_path / "landing"
    generate(landing, DemoSpec(seed=7))
    with FakeSendGrid(api_key=KEY) as fake:
        env = {
            **shared_api,
            "SENDGRID_API_KEY": KEY,
            "BACKORDERS_SENDGRID_HOST": fake.url,
            "BACKORDERS_FROM_EMAIL": "care@shop.test",
        }
        # the reference: one run after the other on a database of its own
        ref_db = tmp_path / "ref.duckdb"
        for _ in range(2):
            done = cp.run(_args(landing, ref_db), env)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        sent_before = sum(fake.received_keys().values())
        # together: the second starts while the first is ingesting (it holds the db)
        db = tmp_path / "db.duckdb"
        first = cp.Running(_args(landing, db), env)
        first.wait_for("[1/")
        second = cp.Running(_args(landing, db), env)
        codes = (first.wait(timeout=600), second.wait(timeout=600))
        keys = fake.received_keys()
    assert codes == (0, 0), first.output[-3000:] + "\n----\n" + second.output[-3000:]
    assert "another backorders run holds" not in first.output + second.output
    together, reference = _state(db), _state(ref_db)
    assert together == reference
    assert together["runs"] == ["succeeded", "succeeded"]
    first_files, second_files = together["files_per_run"]  # type: ignore[misc]
    assert set(second_files) == {"duplicate"} and second_files["duplicate"] == sum(
        first_files.values()
    )
    # every email once: the reference's sends and these, each key exactly once per database
    assert max(keys.values()) == 2 and sum(keys.values()) == 2 * sent_before
    limit = httpx.get(
        f"{shared_api['PREFECT_API_URL']}/v2/concurrency_limits/{writer_slot.limit_name(db)}",
        timeout=30,
    ).json()
    assert limit["limit"] == 1 and limit["active_slots"] == 0


def test_a_run_that_waits_too_long_for_the_writer_slot_fails_with_a_readable_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.concurrency.sync import concurrency

    from flows.backorder_cycle import backorder_cycle

    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    landing.mkdir()
    monkeypatch.setenv("BACKORDERS_WRITER_WAIT_S", "2")
    name = writer_slot.limit_name(db)
    writer_slot.ensure_limit(name)
    with concurrency(name, occupy=1, strict=True):  # another run holds the database
        state = backorder_cycle(landing=str(landing), db=str(db), return_state=True)
    assert state.is_failed()
    assert f"another backorders run is writing {db}" in str(state.message)
    assert "nothing was done" in str(state.message)
    assert not db.exists()  # it never touched the file


def test_a_killed_runs_writer_slot_frees_itself_and_the_next_run_goes_on(
    tmp_path: Path, shared_api: dict[str, str]
) -> None:
    import os
    import signal

    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, DemoSpec(seed=7))
    url = f"{shared_api['PREFECT_API_URL']}/v2/concurrency_limits/{writer_slot.limit_name(db)}"
    killed = cp.Running(_args(landing, db), shared_api)
    killed.wait_for("[1/")  # it holds the writer slot (taken before the file is opened)
    os.killpg(killed.proc.pid, signal.SIGKILL)  # no handler runs: the slot is not released
    killed.wait(timeout=30)
    assert httpx.get(url, timeout=30).json()["active_slots"] == 1

    nxt = cp.Running(_args(landing, db), shared_api)
    nxt.wait_for("waiting for the writer slot")  # it says why it does nothing yet
    nxt.wait_for("[1/", timeout=300)  # the lease ran out: it goes on
    code = nxt.wait(timeout=300)

    assert code == 0, nxt.output[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:  # it recorded the killed one
        runs = con.execute("select status, message from runs order by started_at").fetchall()
    assert [s for s, _ in runs] == ["interrupted", "succeeded"], runs
    assert "ended without recording an outcome" in runs[0][1]
    assert httpx.get(url, timeout=30).json()["active_slots"] == 0
