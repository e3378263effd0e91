"""Run the local Stripe server as a process (tests, trials, the demo)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from backorders.devtools.stripe_server import FakeStripe


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; print the URL first and a summary last."""
    p = argparse.ArgumentParser(prog="python -m backorders.devtools.stripe_server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", required=True, help="the one secret key accepted")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--rate-limit", type=int, default=None, help="requests per second")
    p.add_argument("--intents", type=Path, help="JSON list of PaymentIntents to create")
    args = p.parse_args(argv)
    fake = FakeStripe(
        api_key=args.key,
        host=args.host,
        port=args.port,
        latency_s=args.latency_ms / 1000,
        rate_limit_per_s=args.rate_limit,
    )
    if args.intents:
        for it in json.loads(args.intents.read_text(encoding="utf-8")):
            fake.add_intent(
                it["id"],
                int(it["amount"]),
                it.get("currency", "usd"),
                capture_before=it.get("capture_before"),
                multicapture=bool(it.get("multicapture", False)),
            )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake.start()
    print(fake.url, flush=True)
    stop.wait()
    fake.stop()
    caps = fake.captures()
    print(
        f"captured {sum(len(v) for v in caps.values())} time(s) on {len(caps)} intent(s); "
        f"{fake.ledger.replayed} idempotent replay(s); {fake.answered_429} answered 429; "
        f"{fake.answered_401} answered 401",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
