"""SIGKILL mid-send, then a rerun: every capture carried out once (issue 15).

The payment outbox holds 120 due captures on 120 PaymentIntents of the local Stripe server,
which answers after 100 ms, once the capture took effect: a sender killed while waiting
has captured without knowing it. The sender is a real subprocess on a real DuckDB file
(tests/integration/payments_worker.py), killed with a real SIGKILL once some captures went
through; the rerun finds the in-flight requests `sending` and sends them again with the
same Idempotency-Key and body, which Stripe (and the server) answer from the first request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from backorders.adapters import store
from backorders.devtools.stripe_server import FakeStripe
from tests.integration.payments_world import KEY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("payments_worker.py")
INTENTS = 120
CONCURRENCY = 4


def seed(db: Path, fake: FakeStripe) -> None:
    """One due capture per intent, queued as the queue step writes them."""
    now = datetime.now(UTC)
    with store.connect(db) as con:
        for i in range(INTENTS):
            fake.add_intent(f"pi_k{i:04d}", 1000 + i)
        con.execute(
            "insert into payment_requests (request_key, order_id, customer_id, provider, "
            "payment_ref, kind, amount, captured_before, currency, expires_at, preview, status, "
            "attempts, run_id, created_at) select 'bo_k' || lpad(i::varchar, 4, '0'), 'O' || i, "
            "'C1', 'stripe', 'pi_k' || lpad(i::varchar, 4, '0'), 'capture', 1000 + i, 0, 'USD', "
            "$exp, false, 'pending', 0, 'seed', $now + to_microseconds(i) from range($n) as t(i)",
            {"n": INTENTS, "now": now, "exp": now + timedelta(days=5)},
        )


def start(db: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), url, KEY, str(CONCURRENCY)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_mid_send_then_rerun_captures_every_order_once(tmp_path: Path) -> None:
    """Killed with requests in flight; after the rerun every intent is captured exactly once."""
    db = tmp_path / "payments.duckdb"
    with FakeStripe(api_key=KEY, latency_s=0.1) as fake:
        seed(db, fake)
        proc = start(db, fake.url)
        deadline = time.monotonic() + 120
        while sum(map(len, fake.captures().values())) < 20 and proc.poll() is None:
            assert time.monotonic() < deadline, "the worker captured nothing"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the worker finished before it was killed"
        with duckdb.connect(str(db), read_only=True) as con:
            in_doubt = con.execute(
                "select count(*) from payment_requests where status = 'sending'"
            ).fetchone()[0]
        rerun = start(db, fake.url)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        captures = fake.captures()
        replayed = fake.ledger.replayed
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select payment_ref, amount, status from payment_requests").fetchall()
        done = con.execute(
            "select count(*), count(distinct entity_id) from audit_log "
            "where event = 'payment_succeeded'"
        ).fetchone()
    print(
        f"\n{INTENTS} captures, killed with {in_doubt} in flight; rerun: {out.strip()}; "
        f"{replayed} answered from the idempotency store"
    )
    assert 1 <= in_doubt <= CONCURRENCY  # the kill hit requests in flight, only those
    assert f"resent={in_doubt}" in out
    assert replayed <= in_doubt  # those that had reached the server: its stored answer
    assert sorted(captures) == sorted(r[0] for r in rows)
    assert all(len(v) == 1 for v in captures.values())  # never twice
    assert {ref: amt for ref, amt, _ in rows} == {k: v[0] for k, v in captures.items()}
    assert {s for *_, s in rows} == {"succeeded"}
    assert done == (INTENTS, INTENTS)
