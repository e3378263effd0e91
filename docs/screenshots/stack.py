"""The Prefect stack the screenshots are taken of: `prefect server start`, `backorders serve`.

Used by take.py: a real server on a free loopback port with its own PREFECT_HOME (the
UI on a port other than 4200 needs PREFECT_UI_API_URL), `backorders serve` pointed at it,
and the few REST calls that find and wait for the runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
DELAYED = "backorders.supplier.delayed"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """The few REST calls of the Prefect server this script needs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a JSON body; the decoded answer."""
        for _ in range(10):
            r = self.http.post(path, json=body or {})
            if r.status_code != 503:  # the server's SQLite busy on a loaded machine: again
                break
            time.sleep(2)
        r.raise_for_status()
        return r.json() if r.content else None

    def wait_until(self, what: str, probe: Any, timeout: float) -> Any:
        """Poll `probe()` until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if value := probe():
                    return value
            time.sleep(1)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}")

    def deployments(self) -> list[dict[str, Any]]:
        """Every deployment."""
        return list(self.post("/deployments/filter"))

    def flow_runs(self, flow_name: str) -> list[dict[str, Any]]:
        """The flow runs of one flow, newest first."""
        body = {"flows": {"name": {"any_": [flow_name]}}, "sort": "EXPECTED_START_TIME_DESC"}
        return list(self.post("/flow_runs/filter", body))

    def events(self, name: str, resource_id: str, since: datetime) -> list[dict[str, Any]]:
        """The events of that name and resource since `since`, oldest first."""
        body = {
            "filter": {
                "event": {"name": [name]},
                "resource": {"id": [resource_id]},
                "occurred": {"since": since.isoformat(), "until": datetime.now(UTC).isoformat()},
                "order": "ASC",
            },
            "limit": 10,
        }
        return list(self.post("/events/filter", body)["events"])

    def all_ended(self, flow_name: str) -> bool:
        """Whether every flow run of the flow has ended (true when there is none)."""
        return all(r["state"]["type"] in TERMINAL for r in self.flow_runs(flow_name))

    def finished(self, run_id: str, timeout: float = 420) -> dict[str, Any]:
        """Wait for a flow run to end; the run."""

        def probe() -> Any:
            r = self.http.get(f"/flow_runs/{run_id}").json()
            return r if r["state"]["type"] in TERMINAL else None

        return dict(self.wait_until(f"flow run {run_id} to end", probe, timeout))


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child in a session of its own, its output into `log`; SIGTERM (then SIGKILL) at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own commands)
            args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def emit_delay(env: dict[str, str], supplier_id: str, payload: dict[str, Any]) -> None:
    """Send the supplier-delay event as ops would, with `prefect event emit`."""
    subprocess.run(  # noqa: S603 (our own command)
        [
            str(BIN / "prefect"),
            "event",
            "emit",
            DELAYED,
            "--resource-id",
            f"backorders.supplier.{supplier_id}",
            "--payload",
            json.dumps(payload),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def stack_env(home: Path, api_url: str, sendgrid_url: str) -> dict[str, str]:
    """This environment without Prefect/backorders settings, pointed at our server and SendGrid."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "BACKORDERS_", "SENDGRID_"))
    }
    return env | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_API_URL": api_url,  # the UI on another port than 4200 needs it
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # serve picks a new flow run up within 2 s
        "SENDGRID_API_KEY": "SG.shots",  # the local SendGrid server's key, not a real one
        "BACKORDERS_SENDGRID_HOST": sendgrid_url,
        "BACKORDERS_FROM_EMAIL": "care@shop.test",
        # the supplier-delay trigger's debounce window: short, so the rerun starts soon
        "BACKORDERS_SUPPLIER_DELAY_WINDOW_S": "10",
        "PYTHONUNBUFFERED": "1",
    }


@contextlib.contextmanager
def running(
    tmp: Path, landing: Path, db: Path, sendgrid_url: str
) -> Iterator[tuple[Api, dict[str, str], str]]:
    """`prefect server start` and `backorders serve` on them; (api, env, UI url) while they run."""
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    env = stack_env(tmp / "prefect", f"{ui}/api", sendgrid_url)
    server = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    serve = [
        sys.executable,
        "-m",
        "backorders.cli",
        "serve",
        "--landing",
        str(landing),
        "--db",
        str(db),
    ]
    api = Api(f"{ui}/api")
    print(f"prefect server on {ui} (logs in {tmp})", flush=True)
    with process(server, env, tmp / "server.log"):
        api.wait_until("the server", lambda: api.http.get("/health").status_code == 200, 180)
        with process(serve, env, tmp / "serve.log"):
            api.wait_until("the deployments", lambda: len(api.deployments()) >= 3, 180)
            yield api, env, ui
