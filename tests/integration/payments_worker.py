"""A payment sending process for the kill test: `python payments_worker.py DB URL KEY CONCURRENCY`.

Sends every due payment request of DB through the (local) Stripe server at URL; run as a
real subprocess so that a test can SIGKILL it mid-send and start it again. Prints
`done succeeded=.. failed=.. unknown=.. resent=..` at the end.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from backorders.adapters import payment_send, store
from backorders.adapters.stripe_sender import StripeSender


def main(db: str, url: str, key: str, concurrency: str = "4") -> int:
    """Send the due requests of the payment outbox at `db`."""
    sender = StripeSender(api_key=key, api_base=url, timeout_s=5.0, max_attempts=4)
    run_id = f"worker-{datetime.now(UTC):%H%M%S%f}"
    with store.connect(Path(db)) as con:
        r = payment_send.send_pending(
            con, sender, run_id=run_id, now=lambda: datetime.now(UTC), concurrency=int(concurrency)
        )
    print(
        f"done succeeded={r.succeeded} failed={r.failed} unknown={r.unknown} resent={r.resent}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
