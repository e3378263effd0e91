"""Local SendGrid server benchmark: how many Mail Send requests it accepts per second.

    uv run python benchmarks/sendgrid_server.py --clients 8 --seconds 5
    uv run python benchmarks/sendgrid_server.py --clients 32 --seconds 5 --latency-ms 150
    uv run python benchmarks/sendgrid_server.py --clients 8 --seconds 10 --latency-ms 150 \\
        --rate-limit 20 --rate-limit-headers retry_after

Starts the server as a separate process (its own GIL, as the email benchmark does) and
runs N client threads that post one-recipient emails (about 1.2 KB) back to back for the
given time; a client answered 429 waits what ``Retry-After`` says (else 1 s), the plain
client a sender should at least beat. Prints one JSON line: accepted requests and rate (as
the server measured them), 429 answers, the peak of requests in flight. It shows that the
server is not the bottleneck of a send rate measured against it. Not a test: figures only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds an email.py: drop the folder from the import path, or it would shadow
# the standard library's `email` package (imported by urllib).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import json
import re
import threading
import time
import urllib.error
import urllib.request

from backorders.devtools.sendgrid_server.process import spawn

KEY = "SG.bench-key"
BODY = json.dumps(
    {
        "personalizations": [{"to": [{"email": "customer@example.org"}]}],
        "from": {"email": "care@shop.test"},
        "subject": "Your backorder",
        "content": [{"type": "text/plain", "value": "It ships next week. " * 60}],
    }
).encode()
SUMMARY = re.compile(
    r"accepted (\d+) message\(s\); (\d+) answered 429; peak (\d+) in flight; "
    r"accepted rate (n/a|[\d.]+)/?s?"
)


def post(url: str) -> tuple[int, float]:
    """One request: (status, seconds to wait before the next one)."""
    request = urllib.request.Request(
        url + "/v3/mail/send",
        data=BODY,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, 0.0
    except urllib.error.HTTPError as exc:
        wait = float(exc.headers.get("Retry-After") or 1) if exc.code == 429 else 0.0
        return exc.code, wait


def main() -> int:
    """Run the clients against a fresh server process; print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--rate-limit", type=float, default=None)
    ap.add_argument("--rate-limit-headers", default="sendgrid")
    args = ap.parse_args()
    flags = ["--port", "0", "--key", KEY, "--latency-ms", str(args.latency_ms)]
    if args.rate_limit is not None:
        flags += ["--rate-limit", str(args.rate_limit)]
        flags += ["--rate-limit-headers", args.rate_limit_headers]
    server, url = spawn(flags)
    statuses: list[int] = []
    try:
        stop = time.monotonic() + args.seconds

        def client() -> None:
            while time.monotonic() < stop:
                status, wait = post(url)
                statuses.append(status)  # list.append is atomic
                time.sleep(wait)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    found = SUMMARY.search(stderr)
    if found is None:
        print(stderr, file=sys.stderr)
        return 1
    accepted, refused, peak, rate = found.groups()
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": args.seconds,
                "latency_ms": args.latency_ms,
                "rate_limit": args.rate_limit,
                "rate_limit_headers": args.rate_limit_headers if args.rate_limit else None,
                "requests": len(statuses),
                "accepted": int(accepted),
                "accepted_per_s": None if rate == "n/a" else float(rate),
                "answered_429": int(refused),
                "peak_in_flight": int(peak),
                "other_statuses": sorted({s for s in statuses if s not in (202, 429)}),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
