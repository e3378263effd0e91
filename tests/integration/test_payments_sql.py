"""sql/payments/new_requests.sql decides exactly what backorders.domain.payments.decide does.

Random orders (lines in every status, prices, authorizations, ship-complete or not) go
through a few runs: each run sets line_status, queues with the SQL and asks the pure rule
with what the earlier runs asked; kinds, amounts, final flags and keys must agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backorders.adapters import payment_queue
from backorders.domain.payments import Authorization, PayLine, decide, to_minor
from tests.integration.conftest import insert_line_status
from tests.unit.test_payments import line_state

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@st.composite
def worlds(draw: st.DrawFn) -> dict:
    orders = []
    for i in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 3))
        orders.append(
            {
                "order_id": f"O{i}",
                "ship_complete": draw(st.booleans()),
                "currency": draw(st.sampled_from(["USD", "JPY", "KWD"])),
                "authorized": draw(st.integers(1, 20000)),
                "expires_in_h": draw(st.sampled_from([-1, 30, 300])),
                "qty": draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)),
                "price": draw(st.lists(st.decimals(0, 60, places=2), min_size=n, max_size=n)),
            }
        )
    runs = []
    for _ in range(draw(st.integers(1, 4))):
        run = {}
        for o in orders:
            states = []
            for q in o["qty"]:
                states.append(line_state(draw, q))
            run[o["order_id"]] = states
        runs.append(run)
    return {"orders": orders, "runs": runs, "multicapture": draw(st.booleans())}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_sql_queue_equals_the_pure_reference(con: duckdb.DuckDBPyConnection, world: dict) -> None:
    for t in ("orders", "order_lines", "payment_requests"):
        con.execute(f"delete from {t}")
    auths: dict[str, Authorization] = {}
    for o in world["orders"]:
        exp = NOW + timedelta(hours=o["expires_in_h"])
        con.execute(
            "insert into orders (order_id, customer_id, placed_at, status, ship_complete, "
            "priority, currency, updated_at, source_sha256, payment_provider, payment_ref, "
            "payment_amount, payment_currency, payment_expires_at) values ($o, 'C1', $t, 'open', "
            "$sc, 0, $cur, $t, 'x', 'stripe', $ref, $amt, null, $exp)",
            {
                "o": o["order_id"],
                "t": NOW - timedelta(days=1),
                "sc": o["ship_complete"],
                "cur": o["currency"],
                "ref": "pi_" + o["order_id"],
                "amt": o["authorized"],
                "exp": exp,
            },
        )
        for n, (q, p) in enumerate(zip(o["qty"], o["price"], strict=True), start=1):
            con.execute(
                "insert into order_lines (order_id, line_no, sku, qty, unit_price, status, "
                "updated_at, source_sha256) values ($o, $n, 'SKU-A', $q, $p, 'open', $t, 'x')",
                {"o": o["order_id"], "n": n, "q": q, "p": p, "t": NOW},
            )
        auths[o["order_id"]] = Authorization("stripe", "pi_" + o["order_id"], o["authorized"], exp)
    by_id = {o["order_id"]: o for o in world["orders"]}
    for k, run in enumerate(world["runs"]):
        rows = []
        for oid, states in run.items():
            o = by_id[oid]
            for n, ((s, alloc), q) in enumerate(zip(states, o["qty"], strict=True), start=1):
                rows.append(
                    {
                        "order_id": oid,
                        "line_no": n,
                        "customer_id": "C1",
                        "sku": "SKU-A",
                        "qty_ordered": q,
                        "qty_shipped": q if s == "shipped" else 0,
                        "qty_allocated": alloc,
                        "qty_promised": 0,
                        "qty_unpromised": 0,
                        "promised_date": None,
                        "status": s,
                        "priority_rank": 1,
                        "reason": "given",
                        "run_id": f"run-{k}",
                    }
                )
        insert_line_status(con, rows)
        now = NOW + timedelta(minutes=k)
        payment_queue.queue_requests(
            con,
            run_id=f"run-{k}",
            now=now,
            dry_run=False,
            multicapture=world["multicapture"],
            authorization_days=7,
        )
        got = {
            r[0]: r[1:]
            for r in con.execute(
                "select order_id, kind, amount, final_capture, request_key from payment_requests "
                "where run_id = $r",
                {"r": f"run-{k}"},
            ).fetchall()
        }
        want = {}
        for oid, states in run.items():
            o = by_id[oid]
            lines = [
                PayLine(
                    s, q, q if s == "shipped" else 0, alloc, to_minor(Decimal(p), o["currency"])
                )
                for (s, alloc), q, p in zip(states, o["qty"], o["price"], strict=True)
            ]
            r = decide(
                oid,
                lines,
                auths[oid],
                ship_complete=o["ship_complete"],
                multicapture=world["multicapture"],
                now=now,
            )
            if r is None:
                continue
            want[oid] = (r.kind, r.amount, r.final_capture, r.key)
            a = auths[oid]
            auths[oid] = Authorization(
                a.provider,
                a.payment_ref,
                a.amount,
                a.expires_at,
                captured_before=a.captured_before + (r.amount or 0),
                captures=a.captures + (r.kind == "capture"),
                closed=r.kind == "release" or r.final_capture in (True, None),
            )
        for kind, _, final, _ in want.values():
            event(f"{kind} final={final}")
        assert got == want
