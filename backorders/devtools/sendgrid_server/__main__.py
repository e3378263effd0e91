"""Run the local SendGrid server as a process: ``python -m backorders.devtools.sendgrid_server``.

Prints its base URL (e.g. ``http://127.0.0.1:54321``) on the first stdout line and serves
until SIGINT/SIGTERM; then prints what it saw on stderr (accepted requests, 429 answers,
the peak of requests in flight, the accepted rate).

    python -m backorders.devtools.sendgrid_server --port 8025 --key SG.local \
        --rate-limit 20 --rate-limit-headers retry_after --latency-ms 150
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from backorders.devtools.sendgrid_server.limits import ACTIVITY_MODES
from backorders.devtools.sendgrid_server.rate_limit import RATE_LIMIT_HEADER_MODES
from backorders.devtools.sendgrid_server.server import FakeSendGrid


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake as a standalone process; print its URL and serve until signalled."""
    parser = argparse.ArgumentParser(
        description="A local SendGrid-compatible server for tests and demos."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", required=True, help="API key the fake accepts")
    parser.add_argument("--slow-delay", type=float, default=1.0, help="seconds for 'slow'")
    parser.add_argument(
        "--activity", choices=sorted(ACTIVITY_MODES), default="available", help="Email Activity"
    )
    parser.add_argument("--activity-lag", type=float, default=0.0, help="feed lag, seconds")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="N",
        help="Mail Send requests allowed per one-second window (429 beyond)",
    )
    parser.add_argument(
        "--rate-limit-headers",
        choices=sorted(RATE_LIMIT_HEADER_MODES),
        default="sendgrid",
        help="how a 429 is dressed: SendGrid's headers, Retry-After, or a reset in the past",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="wait before every Mail Send answer"
    )
    parser.add_argument(
        "--forbidden-key",
        action="append",
        default=[],
        help="a key without the mail.send scope (403); repeatable",
    )
    args = parser.parse_args(argv)

    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with FakeSendGrid(
        api_key=args.key,
        host=args.host,
        port=args.port,
        slow_delay_s=args.slow_delay,
        activity=args.activity,
        activity_lag_s=args.activity_lag,
        rate_limit_per_s=args.rate_limit,
        rate_limit_headers=args.rate_limit_headers,
        latency_s=args.latency_ms / 1000.0,
        forbidden_keys=args.forbidden_key,
    ) as fake:
        print(fake.url, flush=True)
        while not done.wait(0.5):
            pass
        rate = fake.accepted_rate_per_s()
        print(
            f"accepted {len(fake.messages)} message(s); {fake.rate_limited_requests} answered "
            f"429; peak {fake.peak_in_flight} in flight; accepted rate "
            f"{'n/a' if rate is None else f'{rate:.1f}/s'}",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
