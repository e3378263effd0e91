"""The benchmark scripts still run and still measure what they claim, at a tiny size.

Figures are not asserted (the machines are shared and noisy); what each benchmark
checks or counts is: the stripped allocation of `--floor` must give every line the
real allocation's shares, the late supplier of `--rerun` must move promises, the
rerun of `--changed-skus` must redo the changed skus only (none when nothing changed), the bad
rows of the ingest benchmark must be quarantined, every message must be sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHANGE_KINDS = {"new", "now_allocated", "now_unpromised", "later", "earlier", "status"}


def _bench(script: str, *args: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Run benchmarks/<script> in a child process; its JSON lines, parsed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_allocation_benchmark_floor_matches_the_allocation_and_rerun_moves_promises(
    tmp_path: Path,
) -> None:
    (out,) = _bench(
        "allocation.py",
        *("--lines", "3000", "--skus", "60", "--loop-lines", "30", "--floor", "--rerun"),
        *("--dir", str(tmp_path / "work")),
        tmp_path=tmp_path,
    )
    assert out["lines"] == 3000
    assert out["units_from_stock"] > 0 and out["units_from_po"] > 0
    assert out["loop_lines_per_s"] > 0 and out["speedup"] > 0
    assert set(out["allocate_steps"]) >= {"plan", "rank", "shares", "write_results", "commit"}
    # the floor is a floor of the same work only if it allocates the same
    assert out["floor_steps"]["lines_differing_from_allocate"] == 0
    assert out["floor_seconds"] > 0
    # every tenth PO line 14 days late: some promises move, only to known kinds
    changes = out["rerun_promise_changes"]
    assert sum(changes.values()) > 0 and set(changes) <= CHANGE_KINDS
    assert changes.get("later", 0) > 0


@pytest.mark.parametrize("fraction", ["0", "0.1"])
def test_allocation_benchmark_changed_skus_reruns_only_the_changed_ones(
    tmp_path: Path, fraction: str
) -> None:
    (out,) = _bench(
        "allocation.py",
        *("--lines", "3000", "--skus", "200", "--loop-lines", "0", "--changed-skus", fraction),
        *("--dir", str(tmp_path / "work")),
        tmp_path=tmp_path,
    )
    rerun = out["rerun"]
    # the settling run redoes the skus the first run committed; the rerun is incremental
    assert out["settle"]["by_trigger"].get("committed", 0) > 0
    assert rerun["mode"] == "incremental"
    assert out["rerun_seconds"] > 0 and out["rerun_ratio_to_alloc"] > 0
    if fraction == "0":
        assert out["skus_changed"] == 0
        assert rerun["skus_reallocated"] == 0 and rerun["promise_changes"] == {}
    else:
        # about 20 skus changed: each is redone (a shipment's or a delay's through its supply)
        assert 5 <= out["skus_changed"] <= 40
        assert rerun["skus_reallocated"] >= out["skus_changed"]
        assert set(rerun["by_trigger"]) <= {"supply", "order_lines", "committed"}
        assert sum(rerun["promise_changes"].values()) > 0


def test_ingest_benchmark_quarantines_the_bad_rows_and_validates(tmp_path: Path) -> None:
    (out,) = _bench(
        "ingest.py",
        *("--lines", "2000", "--skus", "50", "--bad", "3", "--again"),
        *("--dir", str(tmp_path / "work")),
        tmp_path=tmp_path,
    )
    # 3 zero quantities, 3 unknown skus, 3 repeated keys (both copies of each)
    assert out["rows_quarantined"] == 12
    assert out["rejected"] == []
    assert all(s["success"] for s in out["suites"].values())
    assert out["again"]["rows_loaded"] > 0
    assert all(s["success"] for s in out["again"]["suites"].values())


def test_outbox_queue_benchmark_queues_news_then_only_the_changes(tmp_path: Path) -> None:
    first, second = _bench("outbox_queue.py", "--lines", "2000", "--rerun", tmp_path=tmp_path)
    assert first["messages"] == first["queued"] + first["suppressed"] > 0
    assert 0 < second["messages"] < first["messages"]
    assert "backorder_confirmed" not in second["by_kind"]


def test_email_benchmark_sends_every_message_to_the_local_sendgrid(tmp_path: Path) -> None:
    (out,) = _bench("email.py", "--messages", "300", "--batch-size", "50", tmp_path=tmp_path)
    assert out["sent"] == out["messages"] == 300
    assert out["failed"] == 0 and out["unknown"] == 0


def test_sendgrid_server_benchmark_counts_every_request_as_accepted_or_refused(
    tmp_path: Path,
) -> None:
    (out,) = _bench(
        "sendgrid_server.py",
        *("--clients", "2", "--seconds", "1", "--rate-limit", "5", "--latency-ms", "10"),
        tmp_path=tmp_path,
    )
    assert out["requests"] == out["accepted"] + out["answered_429"] > 0
    assert out["other_statuses"] == [] and 1 <= out["peak_in_flight"] <= 2
