"""The temporary Prefect API server of a command, started by us so that it cannot outlive us.

With no PREFECT_API_URL, Prefect 3.8.8 starts a temporary server itself
(prefect.server.api.server.SubprocessASGIServer): `python -m uvicorn ... create_app` by
subprocess.Popen in our process group, stopped only by an atexit hook. So a SIGKILL of
the command left it running with no parent, and a Ctrl-C (SIGINT to the whole
foreground group) or `timeout` (SIGTERM to its group) killed it while the run still
needed it to record its end ("connection errors").

We start the same server first, from the main thread, and point PREFECT_API_URL at it:
- in a session of its own, so a signal meant for the command's process group never
  reaches it: we stop it ourselves after the run has recorded how it ended;
- with a parent-death signal (Linux prctl(PR_SET_PDEATHSIG, SIGKILL) in the child
  before exec), so that when our process dies, however it dies (SIGKILL too), the
  kernel kills the server. The signal fires when the *thread* that forked the child
  ends, hence the main thread.
Elsewhere than Linux the parent-death signal is skipped (atexit and our stop remain).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """In the child before exec: get SIGKILL when the parent ends; exit if it already did."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


def _owned_server_class() -> Any:
    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    class OwnedServer(SubprocessASGIServer):
        """Prefect's temporary server, run in its own session and killed with its parent."""

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            # the arguments and environment of Prefect 3.8.8's own _run_uvicorn_command
            env = {
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            }
            parent = os.getpid()
            return subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--app-dir",
                    str(prefect.__module_path__.parent),
                    "--factory",
                    "prefect.server.api.server:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "error",
                    "--lifespan",
                    "on",
                ],
                env=env,
                start_new_session=True,
                preexec_fn=lambda: _die_with(parent),
            )

    return OwnedServer


def api_url_configured() -> bool:
    """True when PREFECT_API_URL names a Prefect API (shared): no temporary server."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


@contextlib.contextmanager
def temporary_api() -> Iterator[str | None]:
    """Run the block against PREFECT_API_URL, or a temporary server we own; yield its URL."""
    if api_url_configured():
        yield None
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with socket.socket() as sock:  # a free port on loopback, chosen by the kernel
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = _owned_server_class()(port=port)
    try:
        server.start()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_client_workers()
    finally:
        server.stop()


def _drain_client_workers() -> None:
    """Send the queued run logs and events while the server still listens (as Prefect's
    test harness does), instead of at exit against a stopped server."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for worker in (APILogWorker, EventsWorker):
            with contextlib.suppress(Exception):
                result = worker.drain_all(timeout=10)
                if inspect.isawaitable(result):
                    await result

    with contextlib.suppress(Exception):
        run_coro_as_sync(drain())
