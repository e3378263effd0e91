"""The send pass says what happened (issue 12): refused keys, server errors, stops, dry runs.

Real DuckDB files built from the demo data, the real local SendGrid server over HTTP, the
real communicate stage and sender; a real stop request (backorders.interrupt) while
requests are in flight against a slow server.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr

from backorders import interrupt, pipeline, report
from backorders.adapters import outbox, store
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from backorders.settings import Settings, load_settings
from tests.integration.conftest import allocate_demo

pytestmark = pytest.mark.integration
SPEC = DemoSpec(seed=5, scale=1)
KEY = "SG.send-outcomes-key-0123456789.abcdefghijklmnop"
KEEP = 30  # customers left opted in: the sends stay quick


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database as allocation leaves it, with all but KEEP backordered customers opted out."""
    generate(tmp_path / "landing", SPEC)
    path = tmp_path / "db.duckdb"
    with store.connect(path) as c:
        allocate_demo(c, tmp_path / "landing", SPEC.as_of)
        c.execute(
            "update customers set email_opt_in = false where customer_id not in ("
            "select distinct l.customer_id from line_status l join customers c using "
            "(customer_id) where l.status in ('promised', 'unpromised', 'partially_allocated') "
            "and c.email_opt_in and c.email like '%_@_%._%' order by 1 limit $k)",
            {"k": KEEP},
        )
    return path


@pytest.fixture(autouse=True)
def _no_stop_request() -> Iterator[None]:
    interrupt.reset()
    yield
    interrupt.reset()


def _settings(db: Path, url: str, key: str | None = KEY, **more: object) -> Settings:
    return load_settings().model_copy(
        update={
            "db": db,
            "sendgrid_host": url,
            "sendgrid_api_key": SecretStr(key) if key else None,
            "from_email": "care@shop.test",
            "send_max_attempts": 2,
            "send_timeout_s": 5.0,
            "activity_lookup": False,
            **more,
        }
    )


def _statuses(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("select status, count(*) from outbox group by all").fetchall())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("refusal", ["401", "403"])
def test_bad_api_key_stops_the_send_pass_after_the_first_refusal(db: Path, refusal: str) -> None:
    lines: list[str] = []
    server_key = "SG.the-servers-own-key-0123.abcdefghijk"  # ours is wrong, or lacks mail.send
    with FakeSendGrid(api_key=server_key, forbidden_keys=(KEY,) if refusal == "403" else ()) as f:
        out = pipeline.communicate_stage(
            _settings(db, f.url), "run-key", dry_run=False, progress=lines.append
        )
        requests = f.requests_seen
    concurrency = load_settings().send_concurrency
    assert out["queued"] > concurrency  # more emails than one round of requests
    assert requests <= concurrency  # only the requests already in flight went out
    assert out["send_stopped"] and f"HTTP {refusal}" in out["send_stopped"]
    assert "SENDGRID_API_KEY" in out["send_stopped"]
    assert out["send_failures"] == out["queued"]
    assert _statuses(db).get("failed", 0) == 0 and _statuses(db)["pending"] == out["queued"]
    assert f"0/{out['queued']}" in lines[-1] and "sending stopped" in lines[-1]
    for text in (str(out), *lines):
        assert KEY not in text


@pytest.mark.parametrize("server", ["500", "not listening"])
def test_send_failures_are_counted_not_reported_as_sent(db: Path, server: str) -> None:
    lines: list[str] = []
    with FakeSendGrid(api_key=KEY) as f:
        f.set_failure_rate(1.0, ["500"], seed=1)
        url = f.url if server == "500" else f"http://127.0.0.1:{_closed_port()}"
        out = pipeline.communicate_stage(
            _settings(db, url, send_max_attempts=1), "run-err", dry_run=False, progress=lines.append
        )
    n = out["queued"]
    assert n > 0 and out["sent"]["sent"] == 0 and out["send_failures"] == n
    assert lines[-1].startswith(f"sent 0/{n} messages, {n} failed")
    summary = report.summary_text({"run_id": "run-err", "communicate": out})
    assert f"{n} not sent" in summary
    assert f"{out['sent']['sent']} sent" in summary  # a count, not a dict dump


def test_stop_request_while_sends_are_in_flight_records_them_and_raises_interrupted(
    db: Path,
) -> None:
    with FakeSendGrid(api_key=KEY, latency_s=1.0) as f:

        def stop_once_in_flight() -> None:
            deadline = time.monotonic() + 60
            while f.in_flight == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            interrupt.request(signal.SIGTERM)

        stopper = threading.Thread(target=stop_once_in_flight)
        stopper.start()
        with pytest.raises(interrupt.Interrupted) as raised:
            pipeline.communicate_stage(
                _settings(db, f.url, send_concurrency=4), "run-stop", dry_run=False, progress=print
            )
        stopper.join()
        received = f.received_keys()
    assert raised.value.exit_code == 143
    statuses = _statuses(db)
    # the requests in flight came back and were recorded; nothing else went out
    assert 1 <= statuses.get("sent", 0) <= 4 and "sending" not in statuses
    assert "failed" not in statuses and statuses["pending"] > 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select message_key from outbox where status = 'sent'").fetchall()
    sent = {k for (k,) in rows}
    assert set(received) == sent


def test_dry_run_then_real_run_sends_each_due_message_once(db: Path) -> None:
    with FakeSendGrid(api_key=KEY) as f:
        dry = pipeline.communicate_stage(
            _settings(db, f.url), "run-dry", dry_run=True, progress=lambda _: None
        )
        with duckdb.connect(str(db), read_only=True) as con:
            previews = [k for (k,) in con.execute("select email_key from outbox_emails").fetchall()]
            rendered = outbox.render_emails(con, previews)
        real = pipeline.communicate_stage(
            _settings(db, f.url), "run-real", dry_run=False, progress=lambda _: None
        )
        again = pipeline.communicate_stage(
            _settings(db, f.url), "run-again", dry_run=False, progress=lambda _: None
        )
        dry_again = pipeline.communicate_stage(
            _settings(db, f.url), "run-dry-2", dry_run=True, progress=lambda _: None
        )
        received = f.received_keys()
    due = dry["suppressed"] - _opted_out(db, "run-dry")
    assert dry["dry_run"] and due > 0 and len(rendered) == len(previews)  # previews render
    assert real["queued"] == due and real["sent"]["sent"] == due and real["send_failures"] == 0
    assert len(received) == due and set(received.values()) == {1}
    assert (again["queued"], again["suppressed"]) == (0, 0)
    assert (dry_again["queued"], dry_again["suppressed"]) == (0, 0)


def _opted_out(db: Path, run_id: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "select count(*) from outbox where run_id = $r and last_error like 'customer opted%'",
            {"r": run_id},
        ).fetchone()
    return int(row[0]) if row else 0
