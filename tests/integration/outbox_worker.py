"""A sending process for the fault tests: `python outbox_worker.py DB URL KEY [SETTLE_S [CONCURRENCY]]`.

Sends the outbox; run as a real subprocess so that a test can SIGKILL it at any point and
start it again. Unknown outcomes are looked up in the (local) Email Activity feed and
counted as lost after SETTLE_S seconds (default 1). Prints one progress line per recorded
group of requests (flushed), then `done sent=.. failed=.. unknown=.. resolved=.. requeued=.. unresolved=..`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from backorders.adapters import outbox, outbox_send, store
from backorders.adapters.sendgrid_sender import SendGridSender

BATCH_SIZE = 100


def main(db: str, url: str, key: str, settle_s: str = "1.0", concurrency: str = "2") -> int:
    """Send every sendable email of the outbox at `db` through the server at `url`."""
    outbox_send.PROGRESS_EVERY_S = 0.0  # a line per recorded group: the test kills by lines
    sender = SendGridSender(
        api_key=key,
        host=url,
        from_email="care@shop.test",
        timeout_s=5.0,
        max_attempts=4,
        base_backoff_s=0.01,
        max_backoff_s=0.05,
    )
    run_id = f"worker-{datetime.now(UTC):%H%M%S%f}"
    with store.connect(Path(db)) as con:
        r = outbox.send_pending(
            con,
            sender,
            run_id=run_id,
            now=lambda: datetime.now(UTC),
            progress=lambda line: print(line, flush=True),
            batch_size=BATCH_SIZE,
            concurrency=int(concurrency),
            options=outbox.SendOptions(settle_s=float(settle_s)),
        )
    print(
        f"done sent={r.sent} failed={r.failed} unknown={r.unknown} resolved={r.resolved} "
        f"requeued={r.requeued} unresolved={r.unresolved}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:6]))
