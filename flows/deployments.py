"""Deployments: the nightly full cycle, an hourly feed pickup, and a supplier-delay rerun.

`backorders serve` runs them in this process against the Prefect API in
PREFECT_API_URL (start one with `prefect server start`); ops start the rerun from
the UI with a supplier id.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from flows.backorder_cycle import backorder_cycle, supplier_delay_rerun


def build_deployments(*, landing: Path | None, db: Path | None, cron: str) -> list[Any]:
    """The three deployments, with the landing zone and db as default parameters."""
    params = {k: str(v) for k, v in {"landing": landing, "db": db}.items() if v is not None}
    return [
        backorder_cycle.to_deployment(
            name="nightly",
            cron=cron,
            parameters=params,
            tags=["backorders"],
            description="Full backorder cycle every night.",
        ),
        backorder_cycle.to_deployment(
            name="hourly-feeds",
            cron="15 * * * *",
            parameters=params,
            tags=["backorders"],
            description="Pick up new feed files every hour and re-promise.",
        ),
        supplier_delay_rerun.to_deployment(
            name="supplier-delay",
            parameters=params,
            tags=["backorders"],
            description="Start from the UI after a supplier delay: give the supplier id and a note.",
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
