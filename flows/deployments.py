"""Deployments: the nightly full cycle, an hourly feed pickup, and a supplier-delay rerun.

`backorders serve` runs them in this process against the Prefect API in
PREFECT_API_URL (start one with `prefect server start`); ops start the rerun from
the UI with a supplier id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import serve

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
    """Register and serve the deployments until interrupted."""
    serve(*build_deployments(landing=landing, db=db, cron=cron))
