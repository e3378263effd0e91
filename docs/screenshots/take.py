"""Screenshots of the Prefect UI for docs/operations.md (a documentation tool, not a test).

    ./dev screenshots            # PNGs into docs/img/ (./dev screenshots --out DIR)

It starts `prefect server start` on 127.0.0.1 (a temporary PREFECT_HOME), the local
SendGrid server and `backorders serve` on fresh demo feeds (seed 7). It runs the nightly
deployment at the demo's "now" (2026-11-23), then, after six shipments, again three days
later: the pictures show that second cycle, whose KPIs measure the first one's promises.
When an automation listens for `backorders.supplier.delayed` (the supplier-delay
trigger), it emits one with `prefect event emit` and waits for the rerun it starts. Then
it photographs the pages in headless Chromium (Debian's `chromium`, over the DevTools
protocol: cdp.py) and compresses the PNGs with pngquant and optipng where installed.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cdp.py and stack.py beside us
import cdp
import stack
from stack import DELAYED, ROOT, Api

WIDTH, HEIGHT = 1600, 1000
FROM_FIRST = {"backorder-validation", "backorder-quarantine"}


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
    # the first cycle loaded every feed (all suites ran, rows were quarantined): its
    # validation and quarantine tables say more than the second cycle's few shipments
    first = {a.get("key"): a for a in latest_per_key(found.get("first_artifacts", []))}
    arts = [first.get(a.get("key"), a) if a.get("key") in FROM_FIRST else a for a in arts]
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
            Shot("rerun-logs", route, ("Beginning flow run",), tab="Logs", max_height=1400)
        )
        event = rerun.get("delay_event")
        if event is not None:  # the event's own page: its resource and payload
            day = event["occurred"][:10]
            route = f"/events/event/{day}/{event['id']}"
            shots.append(
                Shot(
                    "event-supplier-delayed",
                    route,
                    (DELAYED, "new_date"),
                    tab="Raw",
                    max_height=1800,
                )
            )
    return shots


def gather(
    api: Api, first_run: dict[str, Any], cycle_run: dict[str, Any], rerun: dict[str, Any] | None
) -> dict[str, Any]:
    """The ids the pictures need: artifacts of both cycles, deployments, automations."""

    def artifacts(run: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
        return list(api.post("/artifacts/filter", body))

    return {
        "cycle_run": cycle_run,
        "rerun": rerun,
        "artifacts": artifacts(cycle_run),
        "first_artifacts": artifacts(first_run),
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


def second_day(db: Path, landing: Path) -> None:
    """Shipments of six lines the first cycle filled from stock, three on their promised
    date and three a day after it: the second cycle then has promises to measure."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        lines = con.execute(
            "select a.order_id, a.line_no, a.sku, any_value(a.qty), any_value(a.supply_ref) "
            "from allocations as a join line_status as ls using (order_id, line_no) "
            "where ls.status = 'allocated' and ls.qty_shipped = 0 "
            "group by all having count(*) = 1 order by a.order_id, a.line_no limit 6"
        ).fetchall()
    rows = "".join(
        f"SHP-DAY2-{i},{o},{n},{sku},{q},{loc},2026-11-{24 + i % 2}T10:00:00Z\n"
        for i, (o, n, sku, q, loc) in enumerate(lines)
    )
    header = "shipment_id,order_id,line_no,sku,qty,location_id,shipped_at\n"
    (landing / "shipments" / "shipments_2026-11-25.csv").write_text(header + rows)


def run_delay(api: Api, env: dict[str, str], supplier: str, new_date: str) -> dict[str, Any] | None:
    """Emit the supplier-delay event when an automation listens; the rerun it starts."""
    if not delay_trigger_exists(api.post("/automations/filter")):
        print(f"no automation listens for {DELAYED}: no rerun", flush=True)
        return None
    # the cycle's own ingest emitted delay events, whose reruns find nothing left to do:
    # let them end first, so that ours is not inside one of their debounce windows
    time.sleep(10)
    api.wait_until(
        "the reruns of the cycle's own events", lambda: api.all_ended("supplier-delay-rerun"), 600
    )
    time.sleep(float(env["BACKORDERS_SUPPLIER_DELAY_WINDOW_S"]) + 1)
    since = datetime.now(UTC)
    payload = {"new_date": new_date, "reason": "screenshots: the supplier announced a delay"}
    stack.emit_delay(env, supplier, payload)
    print(f"emitted {DELAYED} for {supplier}: {payload}", flush=True)

    def ours() -> list[dict[str, Any]]:
        return [
            r
            for r in api.flow_runs("supplier-delay-rerun")
            if datetime.fromisoformat(r["created"]) >= since
            and str(r["parameters"].get("supplier_id", "")).endswith(supplier)
        ]

    rerun = api.finished(api.wait_until("the rerun", ours, 180)[0]["id"])
    found = api.events(DELAYED, f"backorders.supplier.{supplier}", since)
    rerun["delay_event"] = found[0] if found else None
    print(
        f"  rerun {rerun['name']} ended {rerun['state']['name']}: {rerun['state']['message']}",
        flush=True,
    )
    return rerun


def main(argv: list[str] | None = None) -> int:
    """Start the stack, run the cycle (and the triggered rerun), take the pictures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--supplier", default="SUP-03", help="the supplier of the delay event")
    ap.add_argument("--delay-days", type=int, default=40, help="the event's new date: demo now + N")
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
            first_run = run_cycle(api, spec.as_of.isoformat())
            second_day(db, landing)
            cycle_run = run_cycle(api, (spec.as_of + timedelta(days=3)).isoformat())
            new_date = (spec.as_of + timedelta(days=args.delay_days)).date().isoformat()
            rerun = run_delay(api, env, args.supplier, new_date)
            time.sleep(3)  # the last logs and artifacts reach the server
            shots = plan(gather(api, first_run, cycle_run, rerun))
            print(f"taking {len(shots)} pictures into {args.out}", flush=True)
            written = shoot(ui, shots, args.out)
    if not args.no_compress:
        compress(written)
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} pictures, {total / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
