"""Exactly once through faults: 10,000 messages, 30 % injected failures, a sender SIGKILLed.

The local SendGrid runs in this test process, so it survives the sender being killed;
the sender is a real subprocess (tests/integration/outbox_worker.py) on a real DuckDB file.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import audit, outbox, store
from backorders.adapters.sendgrid_fake import FakeSendGrid
from backorders.adapters.sendgrid_sender import SendGridSender
from tests.integration import outbox_worker

pytestmark = pytest.mark.integration
KEY = "SG.fault-test-key-1234567890"
WORKER = Path(outbox_worker.__file__)
REPO = WORKER.parents[2]


def seed_outbox(db: Path, *, singles: int, pairs: int) -> int:
    """An outbox of pending messages: `singles` one-message emails, `pairs` two-message ones."""
    now = datetime(2026, 11, 23, 6, tzinfo=UTC)
    with store.connect(db) as con, store.transaction(con):
        con.execute(
            "create temp table m as "
            "select 'm' || lpad(i::varchar, 6, '0') as message_key, "
            "case when i < $s then 'm' || lpad(i::varchar, 6, '0') "
            "else 'e' || lpad(((i - $s) // 2)::varchar, 6, '0') end as email_key, "
            "case when i < $s then i else $s + (i - $s) // 2 end as cust "
            "from range($n) t(i)",
            {"s": singles, "n": singles + 2 * pairs},
        )
        con.execute(
            "insert into outbox (message_key, customer_id, order_id, kind, status, attempts, "
            "created_at, run_id, to_email, subject, body_text, body_html, state, email_key) "
            "select message_key, 'C' || cust, 'O-' || message_key, 'backorder_confirmed', "
            "'pending', 0, $now, 'seed', 'c' || cust || '@shop.test', 'Order ' || message_key, "
            "'text of ' || message_key, '<p>' || message_key || '</p>', "
            '\'{"condition":"backordered","promised_date":null}\', email_key from m',
            {"now": now},
        )
        con.execute(
            "insert into outbox_emails select email_key, 'C' || any_value(cust), "
            "'c' || any_value(cust) || '@shop.test', 'Customer ' || any_value(cust), "
            "'Your orders', 'text for ' || email_key, '<p>' || email_key || '</p>', "
            "['backorder_confirmed'], list(message_key order by message_key), $now "
            "from m group by email_key",
            {"now": now},
        )
    return singles + 2 * pairs


def start_worker(db: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), url, KEY],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_progress(proc: subprocess.Popen[str], lines: int, rng: random.Random) -> bool:
    """SIGKILL the worker after `lines` progress lines plus a random pause; False if it ended."""
    assert proc.stdout is not None
    for _ in range(lines):
        line = proc.stdout.readline()
        if not line or line.startswith("done"):
            proc.wait(timeout=30)
            return False
    time.sleep(rng.uniform(0.0, 0.05))  # land anywhere: mid-request, mid-commit, between
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return True


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as f:
        yield f


def test_ten_thousand_messages_survive_faults_and_kills_exactly_once(
    tmp_path: Path, fake: FakeSendGrid
) -> None:
    db = tmp_path / "outbox.duckdb"
    total = seed_outbox(db, singles=8_000, pairs=1_000)
    fake.set_failure_rate(0.3, ["429", "500", "503"], seed=11)
    rng = random.Random(2026)

    kills = 0
    for _ in range(4):  # several SIGKILLs at random points, each followed by a resume
        proc = start_worker(db, fake.url)
        kills += kill_after_progress(proc, rng.randint(1, 12), rng)
    for _ in range(6):  # resume until nothing is left to send (transient failures retried)
        proc = start_worker(db, fake.url)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        if "done sent=0 failed=0 unknown=0" in out:
            break

    received = fake.received_keys()
    delivered_by = {k: d["x_message_id"] for d in fake.deliveries() for k in d["message_keys"]}
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select message_key, status, failure, provider_message_id from outbox"
        ).fetchall()
        last_event = dict(
            con.execute(
                "select entity_id, arg_max(event, seq) from audit_log "
                "where entity = 'message' group by entity_id"
            ).fetchall()
        )
        sent_events = dict(
            con.execute(
                "select entity_id, count(*) from audit_log where event = 'message_sent' "
                "group by entity_id"
            ).fetchall()
        )
        assert audit.verify(con) == []

    assert kills >= 3, "the worker finished before it could be killed: make the run longer"
    assert len(rows) == total
    assert max(received.values()) == 1, "a message was received twice"
    assert set(received) <= {k for k, *_ in rows}
    sent = {k: pid for k, st, _, pid in rows if st == "sent"}
    unknown = {k for k, st, failure, _ in rows if st == "failed" and failure == "unknown"}
    # nothing lost: every message is sent, or explicitly 'unknown' for a person to check
    assert len(sent) + len(unknown) == total
    for k, pid in sent.items():
        assert received[k] == 1 and delivered_by[k] == pid
    # unknown only from the kills: at most the batches in flight at each kill
    per_kill = outbox_worker.CONCURRENCY * outbox_worker.BATCH_SIZE * 2  # 2 messages an email
    assert len(unknown) <= kills * per_kill
    # outbox and audit log agree on every message
    for k in sent:
        assert last_event[k] == "message_sent" and sent_events[k] == 1
    for k in unknown:
        assert last_event[k] == "message_outcome_unknown"
    print(
        f"\n{total} messages, {kills} kills: {len(sent)} sent exactly once, {len(unknown)} "
        f"unknown ({sum(1 for k in unknown if received[k])} of them had reached the server), "
        f"{fake.requests_seen} requests"
    )


def test_connection_dropped_after_acceptance_is_unknown_and_never_resent(
    tmp_path: Path, fake: FakeSendGrid
) -> None:
    db = tmp_path / "outbox.duckdb"
    seed_outbox(db, singles=30, pairs=5)
    sender = SendGridSender(
        api_key=KEY, host=fake.url, from_email="care@shop.test", sleep=lambda _s: None
    )
    fake.fail_next(1, "drop_after_accept")  # the first request lands, its answer is lost
    with store.connect(db) as con:
        first = outbox.send_pending(
            con, sender, run_id="r1", now=lambda: datetime.now(UTC), batch_size=10, concurrency=1
        )
        second = outbox.send_pending(
            con, sender, run_id="r2", now=lambda: datetime.now(UTC), batch_size=10, concurrency=1
        )
        unknown = {
            k
            for (k,) in con.execute(
                "select message_key from outbox where status = 'failed' and failure = 'unknown'"
            ).fetchall()
        }
    assert first.unknown == len(unknown) > 0 and first.sent == 40 - len(unknown)
    assert (second.sent, second.failed, second.unknown) == (0, 0, 0)
    assert all(n == 1 for n in fake.received_keys().values())
    assert unknown <= set(fake.received_keys())  # it did arrive, once: not resent


def test_transient_failure_is_retried_by_the_next_pass_and_4xx_is_not(
    tmp_path: Path, fake: FakeSendGrid
) -> None:
    db = tmp_path / "outbox.duckdb"
    seed_outbox(db, singles=4, pairs=0)
    sender = SendGridSender(
        api_key=KEY,
        host=fake.url,
        from_email="care@shop.test",
        max_attempts=2,
        sleep=lambda _s: None,
    )
    fake.fail_next(2, "503")  # one batch of 4: both attempts fail, so the pass gives up
    with store.connect(db) as con:
        con.execute("update outbox_emails set to_email = 'bad' where email_key = 'm000003'")
        first = outbox.send_pending(con, sender, run_id="r1", now=lambda: datetime.now(UTC))
        second = outbox.send_pending(con, sender, run_id="r2", now=lambda: datetime.now(UTC))
        rows = dict(con.execute("select message_key, failure from outbox").fetchall())
        status = dict(con.execute("select message_key, status from outbox").fetchall())
    assert first.failed == 4 and (second.sent, second.failed) == (3, 0)
    assert rows["m000003"] == "permanent" and status["m000003"] == "failed"
    assert all(status[k] == "sent" for k in ("m000000", "m000001", "m000002"))
    assert fake.received_keys() == {"m000000": 1, "m000001": 1, "m000002": 1}
