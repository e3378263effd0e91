"""Deployments: the nightly full cycle, an hourly feed pickup, and a supplier-delay rerun.

`backorders serve` runs them in this process against the Prefect API in
PREFECT_API_URL (start one with `prefect server start`). The rerun starts on its own
from a `backorders.supplier.delayed` event (a deployment trigger), or from the UI with
a supplier id. `serve` also keeps one notification automation for blocked and failed
runs (flows/automations.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from backorders import events
from backorders.settings import load_settings
from flows.automations import ensure_notification_automation
from flows.backorder_cycle import backorder_cycle
from flows.supplier_delay import supplier_delay_rerun


def supplier_delay_trigger(params: dict[str, str], window_s: int) -> Any:
    """Run the rerun on `backorders.supplier.delayed`: once per supplier per window.

    Reactive, threshold 1, `within` = the window, one bucket per supplier resource: the
    first event of a supplier starts a run at once, the supplier's next events within
    the window start none (Prefect 3.8.8's bucket, server/events/triggers.py), and that
    run reads them all from the events API when the window has closed. So one ingest
    with 50 delayed PO lines of a supplier starts one rerun, and no payload is lost.
    """
    from prefect.events import DeploymentEventTrigger
    from prefect.events.schemas.automations import Posture

    return DeploymentEventTrigger(
        name="supplier-delay-rerun on backorders.supplier.delayed",
        # the UI draws any trigger on our own events as "A custom trigger": say what it does
        description=(
            f"When: an event {events.SUPPLIER_DELAYED} about a supplier (resource "
            f"{events.SUPPLIER_PREFIX}<supplier_id>), from our ingest or from outside. "
            "Then: run supplier-delay-rerun/supplier-delay for that supplier at once; its "
            f"further events within {window_s} s start no other run (the rerun reads them "
            "all). docs/operations.md, 'The automatic rerun'."
        ),
        expect={events.SUPPLIER_DELAYED},
        match={"prefect.resource.id": events.SUPPLIER_PREFIX + "*"},
        for_each={"prefect.resource.id"},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(seconds=window_s),
        parameters={
            **params,
            # templated by the server when it fires (single expressions keep their type)
            "supplier_id": "{{ event.resource.id }}",
            "event_id": "{{ event.id | string }}",
            "note": "started by event {{ event.id }}",
        },
    )


def build_deployments(*, landing: Path | None, db: Path | None, cron: str) -> list[Any]:
    """The three deployments, with the landing zone and db as default parameters."""
    params = {k: str(v) for k, v in {"landing": landing, "db": db}.items() if v is not None}
    window_s = load_settings().supplier_delay_window_s
    return [
        backorder_cycle.to_deployment(
            name="nightly",
            cron=cron,
            # the oracle once a night: every sku reallocated, whatever changed
            parameters={**params, "full": True},
            tags=["backorders"],
            description="Full backorder cycle every night (every sku reallocated).",
        ),
        backorder_cycle.to_deployment(
            name="hourly-feeds",
            cron="15 * * * *",
            parameters=params,
            tags=["backorders"],
            description=(
                "Pick up new feed files every hour and re-promise the skus they change "
                "(incremental)."
            ),
        ),
        supplier_delay_rerun.to_deployment(
            name="supplier-delay",
            parameters=params,
            tags=["backorders"],
            description=(
                "Starts on a backorders.supplier.delayed event (its payload's new date is "
                "applied), or from the UI: a supplier id and a new_date (or drop the "
                "supplier's update file first)."
            ),
            triggers=[supplier_delay_trigger(params, window_s)],
        ),
    ]


def serve_all(*, landing: Path | None, db: Path | None, cron: str) -> None:
    """Register and serve the deployments until SIGTERM or SIGINT, then end the runs in hand."""
    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True)  # as prefect.serve: schedules pause while down
    deployments = build_deployments(landing=landing, db=db, cron=cron)
    for deployment in deployments:
        runner.add_deployment(deployment)  # registers it with the API now
    names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments)
    automation = ensure_notification_automation(load_settings(landing=landing, db=db))
    print(f"backorders serve: automation {automation.name!r} ({automation.id})", flush=True)
    print(f"backorders serve: serving {names} (SIGTERM or Ctrl-C stops)", flush=True)
    asyncio.run(_serve_until_signal(runner))


async def _serve_until_signal(runner: Any) -> None:
    """Run the runner; on SIGTERM/SIGINT stop it, cancelling the flow runs it started.

    Prefect 3.8.8's `serve` installs Runner.handle_sigterm, which calls the synchronous
    Runner.stop() from the signal handler, i.e. on the event loop's own thread, and
    waits there for a call scheduled on that same loop: it never returns, so SIGTERM
    was ignored. Here the signal only sets an event; the loop then awaits astop(): each
    flow run's process group gets SIGTERM (our flow records its run `interrupted` and
    ends Cancelled), the polling loops stop, start() returns.
    """
    loop = asyncio.get_running_loop()
    started = asyncio.ensure_future(runner.start())
    await asyncio.sleep(0)  # start() installs its own SIGTERM handler before its first await
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({started, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set() and not started.done():
        print("backorders serve: stopping: ending the flow runs in progress", flush=True)
        await runner.astop()
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await started
