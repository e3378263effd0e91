"""A cycle's life in one process: the stop signals, the whole-cycle guard, abandoned runs.

- SIGTERM/SIGINT ask for a stop (backorders.interrupt): stages finish or settle the
  unit in hand, the run is recorded `interrupted`, the exit code is 128 + the signal. A
  second signal ends the process at once (the next run records the first as interrupted).
- The guard holds, for the whole cycle, the run lock beside the file (backorders.runlock)
  and one open DuckDB connection: DuckDB then keeps its own file lock for our process
  between the stages (the stages' connections share the cached database instance), so
  no other writer, ours or not, can slip in between two stages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from backorders import interrupt, runlock
from backorders.adapters import audit, store


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if interrupt.requested():
        # a second signal: stop now; the kernel drops the locks and the temporary Prefect
        # server dies with us (prefect_server), the next run records this one interrupted
        os._exit(128 + signum)
    interrupt.request(signum)
    name = signal.Signals(signum).name
    print(
        f"\nbackorders: {name} received: stopping after the step in hand "
        "(send it again to stop at once)",
        file=sys.stderr,
        flush=True,
    )
    store.interrupt_running()


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """In the block, SIGTERM and SIGINT request a stop; the previous handlers after it.

    Signal handlers belong to the main thread: elsewhere the block runs unchanged.
    """
    before = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            before[sig] = signal.signal(sig, _on_signal)
    except ValueError:
        pass  # not the main thread
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def cycle_guard(db: Path | str, *, memory_limit: str, command: str = "run") -> Iterator[None]:
    """Hold the database for one cycle: run lock, a connection kept open, integrity checked.

    Re-entrant in one process (the CLI takes it before Prefect starts, the flow again).
    Raises runlock.RunInProgress, store.StoreError or store.DatabaseDamaged up front.
    """
    first = Path(db).resolve() not in runlock._held
    with runlock.hold(db, command=command):
        if not first:
            yield
            return
        con = store.connect(db, memory_limit=memory_limit)
        try:
            store.check_integrity(con, db)
            yield
        finally:
            con.close()


def settle_abandoned_runs(con: Any, run_id: str, now: datetime) -> list[str]:
    """Record runs still `running` whose process is gone as `interrupted` (and audit them).

    Called under the run lock: a live run would hold it, so any run still `running`
    was killed or crashed before it could record its end.
    """
    stale = [
        r
        for (r,) in con.execute(
            "select run_id from runs where status = 'running' and run_id <> $r order by run_id",
            {"r": run_id},
        ).fetchall()
    ]
    if not stale:
        return []
    message = "its process ended without recording an outcome (killed or crashed)"
    con.execute(
        "update runs set status = 'interrupted', finished_at = $n, message = $m "
        "where list_contains($ids, run_id)",
        {"n": now, "m": message, "ids": stale},
    )
    audit.append(
        con,
        run_id,
        [
            audit.AuditEvent("run_interrupted", "run", r, {"message": message, "found_by": run_id})
            for r in stale
        ],
        logged_at=now,
    )
    return stale
