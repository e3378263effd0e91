"""A stop request (SIGTERM or SIGINT) that long stages check between units of work.

The command line's signal handler calls `request(signum)`; ingest (per file), the send
loop (per request) and the flow (between stages) call `requested()` or `check()`, finish
or settle the unit in hand, and stop. Nothing here knows about Prefect or DuckDB.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_stop = threading.Event()
_signum: int | None = None


class Interrupted(RuntimeError):
    """The run was asked to stop by a signal; what was committed stays.

    `done` is the summary of the work the stopped stage finished, when it has one (the
    send stage: what it queued and sent before the stop), for the run's record and events.
    """

    def __init__(self, signum: int, done: dict[str, Any] | None = None) -> None:
        self.signum = signum
        self.done = done
        name = signal.Signals(signum).name if signum in iter(signal.Signals) else str(signum)
        super().__init__(f"interrupted by {name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM), as shells report it."""
        return 128 + self.signum


def request(signum: int) -> None:
    """Ask every stage of this process to stop at its next check."""
    global _signum
    if _signum is None:
        _signum = signum
    _stop.set()


def requested() -> bool:
    """Whether a stop was asked for."""
    return _stop.is_set()


def signum() -> int | None:
    """The signal that asked for the stop, if any."""
    return _signum


def check(done: dict[str, Any] | None = None) -> None:
    """Raise Interrupted if a stop was asked for (with `done`: what the stage finished)."""
    if _stop.is_set():
        raise Interrupted(_signum or signal.SIGTERM, done)


def wait(seconds: float) -> bool:
    """Sleep up to `seconds`, waking early on a stop request; True if a stop was asked for."""
    return _stop.wait(seconds)


def reset() -> None:
    """Forget a stop request (a new run in the same process, and tests)."""
    global _signum
    _signum = None
    _stop.clear()
