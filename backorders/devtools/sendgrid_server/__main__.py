"""Run the local SendGrid server as a process: ``python -m backorders.devtools.sendgrid_server``.

Prints its base URL (e.g. ``http://127.0.0.1:54321``) on the first stdout line and serves
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from backorders.devtools.sendgrid_server.limits import ACTIVITY_MODES
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
    ) as fake:
        print(fake.url, flush=True)
        while not done.wait(0.5):
            pass
        print(f"accepted {len(fake.messages)} message(s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
