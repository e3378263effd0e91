"""One writer per DuckDB file through Prefect: a global concurrency limit named after it.

Every cycle on a database holds one slot of `backorders-db-<hash of the resolved path>`
(limit 1, created on first use) for its whole life, so a second run that arrives through
the same Prefect API waits for the first instead of meeting DuckDB's lock. It waits at
most `writer_wait_s` and then stops with WriterBusy, a readable reason. The slot is a
lease Prefect renews while the run lives: a killed run's slot frees itself when the lease
runs out (LEASE_S). A run on the temporary server of its own process (`backorders run`
without PREFECT_API_URL) takes no slot: no other run talks to that server. The run lock
beside the file (backorders.runlock) stays the last line of defence for writers outside
Prefect, or behind another Prefect API.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

# a killed run's slot frees itself this long after its last renewal (Prefect renews the
# lease while the run lives)
LEASE_S = 60.0


class WriterBusy(RuntimeError):
    """Another cycle held the database's writer slot for longer than this run waits."""


def limit_name(db: Path | str) -> str:
    """The global concurrency limit of a database: stable per resolved path."""
    digest = hashlib.sha256(str(Path(db).resolve()).encode()).hexdigest()[:12]
    return f"backorders-db-{digest}"


def ensure_limit(name: str) -> None:
    """Create the limit with one slot unless it exists (an operator may have changed it)."""
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def _say_if_taken(name: str, db: Path | str) -> None:
    """Log that this run waits when the slot is taken: the UI shows a run doing nothing."""
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    if limit.active_slots >= limit.limit:
        get_run_logger().info(
            "waiting for the writer slot of %s (Prefect concurrency limit %s): another run "
            "holds it; a run that was killed frees it when its lease runs out, %g s after "
            "its last renewal (docs/operations.md, 'A killed run's writer slot')",
            db, name, LEASE_S,
        )  # fmt: skip


@contextlib.contextmanager
def one_writer(db: Path | str, *, wait_s: float) -> Iterator[str]:
    """Hold the database's writer slot for the block; WriterBusy after `wait_s` waiting."""
    name = limit_name(db)
    from backorders import prefect_server

    if prefect_server.owned_api():
        # our own temporary server serves this process alone: no other run can wait on
        # it, and its database (in PREFECT_HOME) would keep a killed run's lease for the
        # next run to wait out; the run lock decides between such runs
        yield name
        return
    ensure_limit(name)
    _say_if_taken(name, db)
    with contextlib.ExitStack() as stack:
        try:
            # strict: a limit deleted under us is an error, never a silent free pass
            stack.enter_context(
                concurrency(
                    name, occupy=1, timeout_seconds=wait_s, lease_duration=LEASE_S, strict=True
                )
            )
        except TimeoutError:
            raise WriterBusy(
                f"another backorders run is writing {db} (Prefect concurrency limit {name}); "
                f"waited {wait_s:g} s for it: nothing was done, run again when it has finished"
            ) from None
        yield name
