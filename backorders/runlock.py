"""One writer for a whole cycle: an OS file lock beside the DuckDB file.

DuckDB locks its file only while a connection is open, and every stage opens and closes
its own, so another writer could slip in between two stages. A run therefore takes
`<db>.lock` (flock, exclusive) for its whole life; the kernel drops the lock when the
process ends, however it ends, so a killed run never leaves a stale lock behind. The
file holds who took it (pid, since) for the message a second run or a reader prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class RunInProgress(RuntimeError):
    """Another process holds the database for a run."""

    def __init__(self, db: Path, holder: dict[str, object], *, reading: bool = False) -> None:
        self.db, self.holder = db, holder
        who = f"pid {holder.get('pid', '?')}, since {holder.get('since', '?')}"
        super().__init__(
            f"a backorders run is in progress on {db} ({who}): its results are not all "
            "committed yet; try again when it has finished"
            if reading
            else f"another backorders run holds {db} ({who})"
        )


def lock_path(db: Path | str) -> Path:
    """The lock file of a database: `<db>.lock` beside it."""
    p = Path(db)
    return p.with_name(p.name + ".lock")


def _holder(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# this process's locks by resolved db path: [fd, depth]. The CLI takes the lock before
# it starts Prefect and the flow takes it again, so it is re-entrant within a process.
_held: dict[Path, list[int]] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def hold(db: Path | str, *, command: str = "run") -> Iterator[None]:
    """Hold the database's run lock for the block; RunInProgress at once if another has it."""
    key = Path(db).resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
        else:
            _held[key] = [_acquire(Path(db), command), 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.close(entry[0])  # closing the descriptor releases the flock


def _acquire(db: Path, command: str) -> int:
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_CLOEXEC (Python's default): a child process never inherits the lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunInProgress(db, _holder(path)) from None
    since = datetime.now(UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": since, "command": command}).encode(), 0)
    return fd


def holder(db: Path | str) -> dict[str, object] | None:
    """Who holds the database's run lock now (pid, since), or None when no run does."""
    path = lock_path(db)
    if Path(db).resolve() in _held:
        return _holder(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no run ever took it here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(path) or {"pid": "?", "since": "?"}
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return None
