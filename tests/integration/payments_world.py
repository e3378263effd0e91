"""A small world for the payment tests: real feeds ingested, real allocation, real Stripe server.

Orders carry Stripe authorizations (payment columns of the orders feed); each cycle is
ingest + reconcile + allocate (as the flow runs them, without the GX suites), then the
payments stage's queue step and, when a sender is given, its send pass (both as
backorders.payment_stage runs them, from the settings).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import stripe

from backorders import payment_stage
from backorders.adapters import allocation_store, audit, payment_queue, payment_send
from backorders.adapters.ingest import ingest_landing
from backorders.adapters.stripe_sender import StripeSender
from backorders.devtools.stripe_server import FakeStripe
from backorders.settings import Settings, load_settings

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
KEY = "sk_test_local_4eC39HqLyjWDarjtT1zdp7dc"
ORDERS_HEADER = (
    "order_id,customer_id,placed_at,status,ship_complete,priority,currency,updated_at,"
    "payment_provider,payment_ref,payment_amount,payment_currency,payment_expires_at"
)
_files = itertools.count(1)


def write(landing: Path, feed: str, header: str, rows: Sequence[str]) -> Path:
    """A CSV file of `feed` with these rows, under a new name (each file is ingested once)."""
    path = landing / feed / f"{next(_files):04d}_{feed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def base(landing: Path, skus: Sequence[str] = ("SKU-A", "SKU-B")) -> None:
    """One customer and the products every order of these tests uses."""
    write(
        landing,
        "customers",
        "customer_id,email,name,tier,updated_at",
        ["C1,ann@example.com,Ann,gold,2026-11-01T00:00:00Z"],
    )
    write(
        landing,
        "products",
        "sku,name,status,backorderable,updated_at",
        [f"{s},Item {s},active,true,2026-11-01T00:00:00Z" for s in skus],
    )


def order(
    order_id: str,
    ref: str,
    amount: int,
    *,
    expires: datetime | None = None,
    ship_complete: bool = False,
    status: str = "open",
    updated: str = "2026-11-20T09:00:00Z",
) -> str:
    """An orders row with a Stripe authorization of `amount` cents."""
    exp = (expires or AS_OF + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{order_id},C1,2026-11-20T09:00:00Z,{status},{str(ship_complete).lower()},0,USD,"
        f"{updated},stripe,{ref},{amount},usd,{exp}"
    )


def lines(rows: Sequence[str]) -> list[str]:
    """order_lines rows: `order_id,line_no,sku,qty,unit_price,status,updated_at`."""
    return list(rows)


def stock(landing: Path, counts: dict[str, int], as_of: datetime) -> None:
    """A stock count of these skus at location L1."""
    write(
        landing,
        "stock",
        "location_id,sku,on_hand,as_of",
        [f"L1,{s},{n},{as_of:%Y-%m-%dT%H:%M:%SZ}" for s, n in counts.items()],
    )


def cycle(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    settings: Settings,
    run_id: str,
    as_of: datetime,
    *,
    sender: payment_send.PaymentSender | None = None,
    dry_run: bool = False,
) -> tuple[payment_queue.PaymentQueueResult, payment_send.PaymentSendResult | None]:
    """Ingest, reconcile, allocate, queue payments and (with a sender) send them."""
    ingest_landing(
        con,
        landing,
        run_id=run_id,
        as_of=as_of,
        settings=settings,
        now=lambda: as_of,
        progress=lambda s: None,
    )
    allocation_store.reconcile(con, as_of=as_of, settings=settings)
    allocation_store.allocate(con, run_id=run_id, as_of=as_of, settings=settings, now=as_of)
    q = payment_stage.queue(con, settings, run_id, as_of, dry_run=dry_run)
    r = None
    if sender is not None:
        r = payment_stage.send(
            con, settings, sender, run_id=run_id, now=lambda: as_of, progress=lambda s: None
        )
    assert audit.verify(con) == []
    return q, r


def requests(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every payment request, in queue order, as dicts."""
    cur = con.execute("select * from payment_requests order by created_at, request_key")
    cols = [d[0] for d in cur.description or []]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


LINES = "order_id,line_no,sku,qty,unit_price,status,updated_at"
T0 = "2026-11-20T09:00:00Z"


def settings(tmp_path: Path, **kw: object) -> Settings:
    """Settings for the shared `con` fixture's file (tests/integration/conftest.py)."""
    return load_settings(db=tmp_path / "backorders.duckdb", landing=tmp_path / "landing", **kw)


def sender(fake_stripe: FakeStripe, *, multicapture: bool = False, key: str = KEY) -> StripeSender:
    """The Stripe sender the tests use against the local server (3 attempts, 5 s)."""
    return StripeSender(
        api_key=key,
        api_base=fake_stripe.url,
        timeout_s=5,
        max_attempts=3,
        multicapture=multicapture,
    )


def two_line_order(landing: Path, fake_stripe: FakeStripe, *, multicapture: bool = False) -> None:
    """O1: 2 x SKU-A at 10.00 and 1 x SKU-B at 15.50 (35.50 USD), authorized for 50.00."""
    fake_stripe.add_intent("pi_O1", 5000, multicapture=multicapture)
    write(landing, "orders", ORDERS_HEADER, [order("O1", "pi_O1", 5000)])
    write(
        landing,
        "order_lines",
        LINES,
        [f"O1,1,SKU-A,2,10.00,open,{T0}", f"O1,2,SKU-B,1,15.50,open,{T0}"],
    )


def ready_order(landing: Path, fake_stripe: FakeStripe) -> None:
    """The two-line order with stock for both lines."""
    two_line_order(landing, fake_stripe)
    stock(landing, {"SKU-A": 2, "SKU-B": 1}, AS_OF - timedelta(hours=1))


def held_capture(fake_stripe: FakeStripe, intent_id: str, key: str) -> threading.Thread:
    """A capture under `key` that has taken effect and whose answer is held (not yet out)."""
    fake_stripe.hold_answers()
    client = stripe.StripeClient(
        KEY, base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )
    first = threading.Thread(
        target=client.v1.payment_intents.capture,
        args=(intent_id, {}, {"idempotency_key": key}),
        daemon=True,
    )
    first.start()
    deadline = time.monotonic() + 30  # a generous bound: the capture itself is instant
    while intent_id not in fake_stripe.captures() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert intent_id in fake_stripe.captures()
    return first
