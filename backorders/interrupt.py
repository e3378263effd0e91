"""A stop request (SIGTERM or SIGINT) that long stages check between units of work.

The command line's signal handler calls `request(signum)`; ingest (per file), the send
loop (per request) and the flow (between stages) call `requested()` or `check()`, finish
or settle the unit in hand, and stop. Nothing here knows about Prefect or DuckDB.
"""

from __future__ import annotations

import signal
import threading

_stop = threading.Event()
_signum: int | None = None


class Interrupted(RuntimeError):
    """The run was asked to stop by a signal; what was committed stays."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
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


def check() -> None:
    """Raise Interrupted if a stop was asked for."""
    if _stop.is_set():
        raise Interrupted(_signum or signal.SIGTERM)


def wait(seconds: float) -> bool:
    """Sleep up to `seconds`, waking early on a stop request; True if a stop was asked for."""
    return _stop.wait(seconds)


def reset() -> None:
    """Forget a stop request (a new run in the same process, and tests)."""
    global _signum
    _signum = None
    _stop.clear()
