"""Start the local SendGrid server as a child process (for tests and benchmarks)."""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]  # the checkout holding the backorders package


def spawn(args: Sequence[str], *, timeout_s: float = 10.0) -> tuple[subprocess.Popen[str], str]:
    """Run ``python -m backorders.devtools.sendgrid_server ARGS``: (the process, its URL).

    Its stderr is piped (the summary it prints when stopped: ``communicate()`` it).
    """
    # this interpreter and a fixed module; only the flags come from the caller
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "backorders.devtools.sendgrid_server", *args],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=timeout_s)
    url = proc.stdout.readline().strip() if ready else ""
    if not url.startswith("http://"):
        proc.kill()
        _, stderr = proc.communicate()
        raise RuntimeError(f"the local SendGrid server did not start: {stderr[-2000:]}")
    return proc, url
