"""Email benchmark: outbox messages per second through SendGridSender to a local SendGrid.

    uv run python benchmarks/email.py --messages 2000 --latency-ms 150          # like the real API
    uv run python benchmarks/email.py --messages 1000 --latency-ms 150 --rate-limit 20 \
        --rate-limit-headers retry_after                                        # a limited server
    uv run python benchmarks/email.py --messages 20000 --templates --latency-ms 150  # templates
    uv run python benchmarks/email.py --messages 20000 --unknown 2000  # + resolving doubt

Seeds N pending messages (realistic ~1.5 KB bodies; one in ten customers with two
orders, combined into one email) straight into a DuckDB file, starts the local
SendGrid-compatible server as a separate process (so it does not share this
process's GIL), and times `outbox.send_pending` as the pipeline runs it: mark each
request's emails `sending`, one request per rendered email (a request per batch of
personalizations with --templates), record outcomes and audit rows. --latency-ms,
--rate-limit and --rate-limit-headers set the strict server's answer delay and request
limit. Prints one JSON line (with the server's own count: accepted, 429s, peak in
flight, accepted rate). Not a test: figures only.

--templates: every email uses a SendGrid dynamic template (data read at send time).
--world: instead of seeded rows, a world as allocation leaves it (benchmarks/outbox_queue.py's
generator: line_status, orders, customers, products; about 9 messages per email, combined
per customer) with its messages queued by `outbox.queue_messages` as the pipeline does;
then about N messages are pending (a few are suppressed: opted out, undeliverable).
--unknown N: then N emails are put in doubt (`failed`/`unknown`, settled): half of
them had been accepted, half never sent; a second pass resolves them through the local
server's Email Activity feed (found: sent; not found: requeued and sent) and is timed.
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
import dataclasses
import importlib.util
import json
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime

import duckdb

from backorders.adapters import outbox, store
from backorders.adapters.sendgrid_sender import SendGridSender
from backorders.domain.messages import Policy

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


def seed_world(db: Path, n: int) -> None:
    """A world of about n pending messages, queued as the pipeline queues them."""
    spec = importlib.util.spec_from_file_location("outbox_queue", _HERE / "outbox_queue.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with store.connect(db) as con:
        gen.generate(con, lines=round(n / 0.45), seed=1)  # about 0.46 messages per line
        outbox.queue_messages(
            con,
            run_id="seed",
            now=datetime(2026, 11, 23, 6, tzinfo=UTC),
            dry_run=False,
            policy=Policy(delay_apology_days=14, max_wait_days=90),
            today=date(2026, 11, 23),
        )


def doubt(con: duckdb.DuckDBPyConnection, n: int, status: str) -> None:
    """Put n emails of this status in doubt, as a killed sender leaves them (settled)."""
    con.execute(
        "update outbox set status = 'sending', failure = 'unknown', "
        "unknown_since = now() - interval 1 hour where email_key in (select email_key "
        "from outbox where status = $s group by email_key order by email_key limit $n)",
        {"s": status, "n": n},
    )


def main() -> None:
    """Seed, start the local server, send everything, print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency-ms", type=float, default=0, help="the server's answer delay")
    ap.add_argument("--rate-limit", type=float, default=None, help="server: requests/s")
    ap.add_argument(
        "--rate-limit-headers",
        default="sendgrid",
        choices=["sendgrid", "retry_after", "reset_past"],
    )
    ap.add_argument("--templates", action="store_true", help="send with dynamic templates")
    ap.add_argument("--world", action="store_true", help="queue a generated world's messages")
    ap.add_argument("--unknown", type=int, default=0, help="emails to put in doubt, then resolve")
    args = ap.parse_args()
    ids = {"backorder_confirmed": "d-" + "1" * 32, "combined": "d-" + "c" * 32}
    options = outbox.SendOptions(
        template_ids=ids if args.templates else {}, settle_s=60, max_queries=10_000
    )
    first = dataclasses.replace(options, resolve_unknown=False)  # the doubt waits for pass 2
    cmd = [sys.executable, "-m", "backorders.devtools.sendgrid_server", "--port", "0", "--key", KEY]
    cmd += ["--latency-ms", str(args.latency_ms)]
    if args.rate_limit:
        cmd += [
            "--rate-limit",
            str(args.rate_limit),
            "--rate-limit-headers",
            args.rate_limit_headers,
        ]
    server = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            (seed_world if args.world else seed)(db, args.messages)
            sender = SendGridSender(
                api_key=KEY, host=url, from_email="care@shop.test", timeout_s=30.0
            )
            with store.connect(db) as con:
                if args.unknown:  # half of the doubt: emails that never left
                    doubt(con, args.unknown // 2, "pending")
                t0 = time.perf_counter()
                r = outbox.send_pending(
                    con,
                    sender,
                    run_id="bench",
                    now=lambda: datetime.now(UTC),
                    progress=lambda _line: None,
                    batch_size=args.batch_size,
                    concurrency=args.concurrency,
                    options=first,
                )
                elapsed = time.perf_counter() - t0
                emails = con.execute("select count(*) from outbox_emails").fetchone()
                row = con.execute(
                    "select count(distinct email_key) from outbox where status = 'sent'"
                ).fetchone()
                sent_emails = row[0] if row else 0
                resolution: dict[str, object] = {}
                if args.unknown:  # the other half: accepted, answer lost
                    doubt(con, args.unknown - args.unknown // 2, "sent")
                    t1 = time.perf_counter()
                    r2 = outbox.send_pending(
                        con,
                        sender,
                        run_id="bench-2",
                        now=lambda: datetime.now(UTC),
                        progress=lambda _line: None,
                        batch_size=args.batch_size,
                        concurrency=args.concurrency,
                        options=options,
                    )
                    resolution = {
                        "unknown_emails": args.unknown,
                        "resolved_messages": r2.resolved,
                        "requeued_messages": r2.requeued,
                        "activity_requests": -(-args.unknown // options.keys_per_query),
                        "resolve_pass_seconds": round(time.perf_counter() - t1, 2),
                    }
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    seen = (err or "").strip().splitlines()[-1:]  # accepted N; K answered 429; peak P; rate R/s
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
                "emails_per_second": round((sent_emails or 0) / elapsed, 1),
                "latency_ms": args.latency_ms,
                "rate_limit": args.rate_limit,
                "rate_limit_headers": args.rate_limit_headers if args.rate_limit else None,
                "server": seen[0] if seen else None,
                "templates": args.templates,
                "world": args.world,
                **resolution,
            }
        )
    )


if __name__ == "__main__":
    main()
