"""Email benchmark: outbox messages per second through SendGridSender to a local SendGrid.

    uv run python benchmarks/email.py --messages 20000 --batch-size 500 --concurrency 2

Seeds N pending messages (realistic ~1.5 KB bodies; one in ten customers with two
orders, combined into one email) straight into a DuckDB file, starts the local
SendGrid-compatible server as a separate process (so it does not share this
process's GIL), and times `outbox.send_pending` as the pipeline runs it: mark each
batch `sending`, one request per batch (personalizations), record outcomes and audit
rows, one transaction each. Prints one JSON line. Not a test: figures only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named email.py: drop its folder from the import path, or it would shadow
# the standard library's `email` package (imported by http.client, urllib, importlib).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime

from backorders.adapters import outbox, store
from backorders.adapters.sendgrid_sender import SendGridSender

KEY = "SG.benchmark-key-0123456789"
LINE = "2 x Widget Deluxe [SKU-10065]: expected December 9, 2026\n"


def seed(db: Path, n: int) -> None:
    """N pending messages; customers c0..: every tenth email carries two messages."""
    now = datetime(2026, 11, 23, 6, tzinfo=UTC)
    text = "Hello Ada,\n\nSome items of your order are on backorder.\n\n" + LINE * 12
    html = "<p>Hello Ada,</p><ul>" + "".join(f"<li>{LINE.strip()}</li>" for _ in range(12))
    with store.connect(db) as con, store.transaction(con):
        con.execute(
            "create temp table m as select 'm' || lpad(i::varchar, 8, '0') as message_key, "
            "case when i % 20 < 18 then 'm' || lpad(i::varchar, 8, '0') "
            "else 'e' || lpad((i // 2)::varchar, 8, '0') end as email_key, "
            "case when i % 20 < 18 then i else i // 2 * 2 end as cust from range($n) t(i)",
            {"n": n},
        )
        con.execute(
            "insert into outbox (message_key, customer_id, order_id, kind, status, attempts, "
            "created_at, run_id, to_email, subject, body_text, body_html, state, email_key) "
            "select message_key, 'C' || cust, 'O-' || message_key, 'backorder_confirmed', "
            "'pending', 0, $now, 'bench', 'c' || cust || '@shop.test', 'Order ' || message_key, "
            '$text, $html, \'{"condition":"backordered","promised_date":null}\', email_key '
            "from m",
            {"now": now, "text": text, "html": html},
        )
        con.execute(
            "insert into outbox_emails select email_key, 'C' || any_value(cust), "
            "'c' || any_value(cust) || '@shop.test', 'Ada Customer', "
            "'Your order ' || email_key || ' is on backorder', $text, $html, "
            "['backorder_confirmed'], list(message_key order by message_key), $now "
            "from m group by email_key",
            {"now": now, "text": text, "html": html},
        )


def main() -> None:
    """Seed, start the local server, send everything, print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "backorders.adapters.sendgrid_fake", "--port", "0", "--key", KEY],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            seed(db, args.messages)
            sender = SendGridSender(
                api_key=KEY, host=url, from_email="care@shop.test", timeout_s=30.0
            )
            with store.connect(db) as con:
                t0 = time.perf_counter()
                r = outbox.send_pending(
                    con,
                    sender,
                    run_id="bench",
                    now=lambda: datetime.now(UTC),
                    progress=lambda _line: None,
                    batch_size=args.batch_size,
                    concurrency=args.concurrency,
                )
                elapsed = time.perf_counter() - t0
                emails = con.execute("select count(*) from outbox_emails").fetchone()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        json.dumps(
            {
                "messages": args.messages,
                "emails": emails[0] if emails else None,
                "sent": r.sent,
                "failed": r.failed,
                "unknown": r.unknown,
                "batch_size": args.batch_size,
                "concurrency": args.concurrency,
                "seconds": round(elapsed, 2),
                "messages_per_second": round(r.sent / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
