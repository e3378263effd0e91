"""Screenshots of the Prefect UI for docs/operations.md (a documentation tool, not a test).

    ./dev uv run --frozen python docs/screenshots/take.py        # PNGs into docs/img/

It starts `prefect server start` on 127.0.0.1 (a temporary PREFECT_HOME), the local
SendGrid server and `backorders serve` on fresh demo feeds (seed 7); runs the nightly
deployment once at the demo's "now"; emits a `backorders.supplier.delayed` event when an
automation listens for it (the supplier-delay trigger) and waits for the rerun it starts;
then photographs the pages in headless Chromium (Debian's `chromium`, docs/screenshots/
cdp.py) and compresses the PNGs with pngquant and optipng when they are installed.
Everything it starts is stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cdp.py and stack.py beside us
import cdp
import stack
from stack import DELAYED, ROOT, Api

WIDTH, HEIGHT = 1600, 1000


@dataclass(frozen=True)
class Shot:
    """One picture: a UI route, the tab to click, the texts that must show first."""

    name: str
    route: str
    wait_for: tuple[str, ...]
    tab: str | None = None
    max_height: int = 2400


def slug(text: str) -> str:
    """A file-name-safe lowercase form of `text`."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def latest_per_key(artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One artifact per key (the newest), unkeyed ones all, in the order they were made."""
    by_key: dict[str, dict[str, Any]] = {}
    for a in sorted(artifacts, key=lambda a: a["created"]):
        by_key[a.get("key") or a["id"]] = a
    return sorted(by_key.values(), key=lambda a: a["created"])


def artifact_name(artifact: dict[str, Any]) -> str:
    """The file name stem of an artifact's picture: its key, or its type and id."""
    return "artifact-" + slug(artifact.get("key") or f"{artifact['type']}-{artifact['id'][:8]}")


def plan(found: dict[str, Any]) -> list[Shot]:
    """Every picture to take, from what the API returned (see `gather`)."""
    run = found["cycle_run"]
    run_route = f"/runs/flow-run/{run['id']}"
    arts = latest_per_key(found["artifacts"])
    shots = [
        Shot("runs", "/runs", (run["name"],), max_height=1400),
        Shot("flow-run-logs", run_route, ("Beginning flow run",), tab="Logs", max_height=2800),
        Shot("flow-run-task-runs", run_route, ("finish-run",), tab="Task Runs"),
    ]
    if arts:
        first = arts[0].get("key") or arts[0]["type"]
        shots.append(Shot("flow-run-artifacts", run_route, (first,), tab="Artifacts"))
    for a in arts:
        # the breadcrumb shows the key; a table or markdown shows its body a moment later
        waits = (a.get("key") or a["id"],)
        shots.append(
            Shot(artifact_name(a), f"/artifacts/artifact/{a['id']}", waits, max_height=3600)
        )
    shots.append(Shot("deployments", "/deployments", ("supplier-delay",)))
    delay = next((d for d in found["deployments"] if d["name"] == "supplier-delay"), None)
    if delay is not None:
        shots.append(
            Shot(
                "deployment-supplier-delay",
                f"/deployments/deployment/{delay['id']}",
                ("supplier-delay",),
            )
        )
    autos = found["automations"]
    shots.append(
        Shot("automations", "/automations", tuple(a["name"] for a in autos) or ("Automations",))
    )
    for a in autos:
        shots.append(
            Shot(
                f"automation-{slug(a['name'])}", f"/automations/automation/{a['id']}", (a["name"],)
            )
        )
    rerun = found.get("rerun")
    if rerun is not None:
        route = f"/runs/flow-run/{rerun['id']}"
        shots.append(
            Shot("rerun-logs", route, ("Beginning flow run",), tab="Logs", max_height=2800)
        )
        shots.append(Shot("events", "/events", (DELAYED,), max_height=1400))
    return shots


def gather(api: Api, cycle_run: dict[str, Any], rerun: dict[str, Any] | None) -> dict[str, Any]:
    """The ids the pictures need: artifacts of the cycle run, deployments, automations."""
    ids = [cycle_run["id"]]
    artifacts = api.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": ids}}})
    return {
        "cycle_run": cycle_run,
        "rerun": rerun,
        "artifacts": artifacts,
        "deployments": api.deployments(),
        "automations": api.post("/automations/filter"),
    }


def delay_trigger_exists(automations: list[dict[str, Any]]) -> bool:
    """Whether some automation starts on `backorders.supplier.delayed`."""
    return any(DELAYED in json.dumps(a.get("trigger", {})) for a in automations)


def compress(paths: list[Path]) -> None:
    """Shrink the PNGs in place with pngquant (lossy palette) and optipng, where installed."""
    pngquant, optipng = shutil.which("pngquant"), shutil.which("optipng")
    for p in paths:
        if pngquant:
            quant = ["--quality=70-95", "--speed=1", "--strip", "--force", "--output"]
            subprocess.run([pngquant, *quant, str(p), str(p)], check=False)  # noqa: S603
        if optipng:
            subprocess.run([optipng, "-quiet", "-o2", str(p)], check=False)  # noqa: S603


def shoot(ui: str, shots: list[Shot], out: Path) -> list[Path]:
    """Take every picture in one browser; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with cdp.browser(WIDTH, HEIGHT) as page:
        for s in shots:
            page.goto(ui + s.route)
            if s.tab:
                page.wait_text(s.tab)
                page.click_text(s.tab)
            page.wait_text(*s.wait_for)
            path = out / f"ui-{s.name}.png"
            page.capture(path, max_height=s.max_height)
            written.append(path)
            print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    return written


def run_cycle(api: Api, as_of: str) -> dict[str, Any]:
    """Start the nightly deployment once at the demo's "now" and wait for it; the flow run."""
    nightly = next(d for d in api.deployments() if d["name"] == "nightly")
    body = {"parameters": {"as_of": as_of}}
    started = api.post(f"/deployments/{nightly['id']}/create_flow_run", body)
    print(f"cycle: flow run {started['name']} of backorder-cycle/nightly", flush=True)
    run = api.finished(started["id"])
    print(f"  ended {run['state']['name']}: {run['state']['message']}", flush=True)
    return run


def run_delay(api: Api, env: dict[str, str], supplier: str) -> dict[str, Any] | None:
    """Emit the supplier-delay event when an automation listens; the rerun it starts."""
    if not delay_trigger_exists(api.post("/automations/filter")):
        print(f"no automation listens for {DELAYED}: no rerun", flush=True)
        return None
    stack.emit_delay(env, supplier, {"note": "screenshots: supplier late"})
    print(f"emitted {DELAYED} for {supplier}", flush=True)
    runs = api.wait_until("the rerun", lambda: api.flow_runs("supplier-delay-rerun"), 180)
    rerun = api.finished(runs[0]["id"])
    print(f"  rerun {rerun['name']} ended {rerun['state']['name']}", flush=True)
    return rerun


def main(argv: list[str] | None = None) -> int:
    """Start the stack, run the cycle (and the triggered rerun), take the pictures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--supplier", default="SUP-03", help="the supplier of the delay event")
    ap.add_argument("--no-compress", action="store_true")
    args = ap.parse_args(argv)

    from backorders.devtools.demo_data import DemoSpec, generate
    from backorders.devtools.sendgrid_server import FakeSendGrid

    spec = DemoSpec(seed=7)
    with (
        tempfile.TemporaryDirectory(prefix="ui-shots-") as tmp_name,
        FakeSendGrid(api_key="SG.shots") as sendgrid,
    ):
        tmp = Path(tmp_name)
        landing, db = tmp / "landing", tmp / "backorders.duckdb"
        generate(landing, spec)
        with stack.running(tmp, landing, db, sendgrid.url) as (api, env, ui):
            cycle_run = run_cycle(api, spec.as_of.isoformat())
            rerun = run_delay(api, env, args.supplier)
            time.sleep(3)  # the last logs and artifacts reach the server
            shots = plan(gather(api, cycle_run, rerun))
            print(f"taking {len(shots)} pictures into {args.out}", flush=True)
            written = shoot(ui, shots, args.out)
    if not args.no_compress:
        compress(written)
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} pictures, {total / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
