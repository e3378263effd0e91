"""Set-based queueing (outbox.queue_messages on a real DuckDB) against the pure reference.

Random worlds go straight into line_status, orders, customers, products, supply_lots and
the outbox (earlier messages); queue_messages runs as the pipeline runs it. The expected
outbox and emails are computed here from the same rows with the pure functions of
backorders.domain.messages (order_state, choose_message, render, compose, message_key,
plan_emails, email_key_for) and is_deliverable_address, as the per-message Python queue
did before it was made set-based.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from backorders.adapters import audit, email_renderer, outbox, outbox_queue, store
from backorders.domain.email import is_deliverable_address
from backorders.domain.messages import (
    History,
    Layout,
    LineView,
    OrderState,
    Policy,
    Rendered,
    Templates,
    choose_message,
    compose,
    email_key_for,
    message_key,
    order_state,
    plan_emails,
    preview_key,
    render,
)
from tests.integration.conftest import insert_line_status

pytestmark = pytest.mark.integration

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
STATUSES = (
    "allocated",
    "partially_allocated",
    "promised",
    "unpromised",
    "not_backorderable",
    "shipped",
    "cancelled",
)
KINDS = (
    "backorder_confirmed",
    "promise_changed",
    "delay_apology",
    "ready_to_ship",
    "cancellation_offer",
)
TABLES = (
    "customers",
    "products",
    "orders",
    "order_lines",
    "line_results",
    "supply_lots",
    "outbox",
    "outbox_emails",
    "audit_log",
)
Row = dict[str, Any]


@dataclass
class World:
    customers: list[Row]
    products: list[Row]
    in_stock: list[str]
    orders: list[Row]
    lines: list[Row]
    told: list[Row]  # earlier outbox messages


# --------------------------------------------------------------------------- strategies

# HTML-special, non-ASCII, template-looking and whitespace characters in customer data
_TRICKY = "&<>\"'$ éüß😀\u00a0\n\t{}"
texts = st.text(alphabet=string.ascii_letters + string.digits + _TRICKY, max_size=10)
ids = st.text(alphabet=string.ascii_uppercase + string.digits + "-&<'é ", min_size=1, max_size=6)
dates = st.dates(min_value=TODAY - timedelta(days=40), max_value=TODAY + timedelta(days=160))
_LOCAL = string.ascii_lowercase + string.digits + ".-_+"
good_emails = st.sampled_from(["ann@shop.test", "b.c+d@ex-ample.co", "zoë@shop.test"])
odd_emails = st.one_of(
    st.builds(
        lambda a, b, c: f"{a}@{b}.{c}",
        st.text(alphabet=_LOCAL, min_size=0, max_size=5),
        st.text(alphabet=string.ascii_lowercase + "-.", min_size=0, max_size=5),
        st.text(alphabet=string.ascii_lowercase + "-", min_size=0, max_size=3),
    ),
    st.text(alphabet=_LOCAL + '@ ,;<>:"()[]\\\x00\x1f\u200b\u2028\u00a0é', max_size=12),
    st.just("a" * 65 + "@shop.test"),
)
emails = st.one_of(good_emails, good_emails, good_emails, odd_emails)
locales = st.sampled_from(
    [None, "", "en-US", "en_US", "en-GB", "de", "de-AT", "fr-CA", "es", "EN-us"]
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    cust_ids = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
    customers = [
        {
            "customer_id": c,
            "email": draw(emails),
            "name": draw(st.one_of(st.none(), texts)),
            "tier": "standard",
            "locale": draw(locales),
            "email_opt_in": draw(st.sampled_from([True, True, True, False])),
            "updated_at": NOW,
        }
        for c in cust_ids
    ]
    skus = draw(
        st.lists(
            st.text(alphabet="ABCé&<", min_size=1, max_size=3), min_size=1, max_size=5, unique=True
        )
    )
    products = [
        {
            "sku": s,
            "name": draw(st.one_of(st.none(), texts)),
            "status": "active",
            "backorderable": True,
            "max_backorder_qty": None,
            "safety_stock": 0,
            "lead_time_days": 7,
            "substitute_skus": draw(st.lists(st.sampled_from(skus), max_size=7)),
            "updated_at": NOW,
        }
        for s in skus[:-1]  # the last sku has no product row: its lines show the sku
    ]
    in_stock = draw(st.lists(st.sampled_from(skus), unique=True))
    order_ids = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    orders, lines, told = [], [], []
    minute = 0
    for o in order_ids:
        customer = draw(st.sampled_from([*cust_ids, *cust_ids, "NOBODY"]))
        orders.append({"order_id": o, "customer_id": customer, "placed_on": draw(dates)})
        # a story: confirmed on d0 (maybe changed since), now promised later or earlier,
        # for delay apologies, promise changes and ready-to-ship; otherwise anything
        story = draw(st.booleans())
        d0 = draw(dates)
        line_nos = draw(st.lists(st.integers(1, 9), min_size=1, max_size=5, unique=True))
        for no in line_nos:
            qty = draw(st.integers(1, 5))
            if story:
                status = draw(st.sampled_from(["promised", "promised", "allocated", "unpromised"]))
                promised = d0 + timedelta(days=draw(st.integers(-5, 60)))
            else:
                status = draw(st.sampled_from([*STATUSES, "promised", "unpromised"]))
                promised = draw(st.one_of(st.none(), dates))
            lines.append(
                {
                    "order_id": o,
                    "line_no": no,
                    "customer_id": customer,
                    "sku": draw(st.sampled_from(skus)),
                    "qty_ordered": qty,
                    "qty_shipped": draw(st.integers(0, qty - 1)),
                    "status": status,
                    "promised_date": promised,
                }
            )
        if story:
            states = [("backorder_confirmed", OrderState("backordered", d0))]
            if draw(st.booleans()):
                d1 = d0 + timedelta(days=draw(st.integers(-3, 30)))
                kind = draw(st.sampled_from(["promise_changed", "delay_apology"]))
                states.append((kind, OrderState("backordered", d1)))
        else:
            states = [
                (
                    draw(st.sampled_from(KINDS)),
                    OrderState(
                        draw(
                            st.sampled_from(
                                ["backordered", "backordered", "ready", "not_backorderable"]
                            )
                        ),
                        draw(st.one_of(st.none(), dates)),
                    ),
                )
                for _ in range(draw(st.integers(0, 3)))
            ]
        for kind, state in states:
            minute += 1
            told.append(
                {
                    "message_key": message_key(customer, o, kind, state),
                    "customer_id": customer,
                    "order_id": o,
                    "kind": kind,
                    "status": draw(st.sampled_from(["pending", "sent", "suppressed", "failed"])),
                    "created_at": NOW - timedelta(days=30) + timedelta(minutes=minute),
                    "state": state.to_json(),
                }
            )
    # an order missing from the orders table gets nothing
    if len(orders) > 1 and draw(st.integers(0, 3)) == 0:
        orders.pop()
    told = list({m["message_key"]: m for m in told}.values())
    return World(customers, products, in_stock, orders, lines, told)


policies = st.builds(
    Policy,
    st.one_of(st.none(), st.integers(0, 10), st.integers(0, 40)),
    st.one_of(st.none(), st.integers(0, 150), st.integers(100, 200)),
)


# --------------------------------------------------------------------------- database


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    c = store.connect(tmp_path_factory.mktemp("outbox_sql") / "o.duckdb")
    c.execute(
        "create table if not exists supply_lots (sku varchar, supply_kind varchar, "
        "supply_ref varchar, qty hugeint, qty_before_safety hugeint, available_on date, "
        "usable boolean, note varchar)"
    )
    yield c
    c.close()


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[Row]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    one = "(" + ", ".join(["?"] * len(cols)) + ")"
    con.execute(
        f"insert into {table} ({', '.join(cols)}) values {', '.join([one] * len(rows))}",
        [r[c] for r in rows for c in cols],
    )


def load(con: duckdb.DuckDBPyConnection, w: World) -> None:
    for table in TABLES:
        con.execute(f"delete from {table}")
    insert(con, "customers", [{**c, "source_sha256": "t"} for c in w.customers])
    insert(con, "products", [{**p, "source_sha256": "t"} for p in w.products])
    insert(
        con,
        "orders",
        [
            {
                "order_id": o["order_id"],
                "customer_id": o["customer_id"],
                "placed_at": datetime.combine(o["placed_on"], datetime.min.time(), UTC)
                + timedelta(hours=13),
                "status": "open",
                "ship_complete": False,
                "priority": 0,
                "currency": "USD",
                "updated_at": NOW,
                "source_sha256": "t",
            }
            for o in w.orders
        ],
    )
    # the order lines behind line_status (it reads each line's order id and sku there)
    insert(
        con,
        "order_lines",
        [
            {
                "order_id": ln["order_id"],
                "line_no": ln["line_no"],
                "sku": ln["sku"],
                "qty": ln["qty_ordered"],
                "unit_price": 1,
                "status": "open",
                "updated_at": NOW,
                "source_sha256": "t",
            }
            for ln in w.lines
        ],
    )
    insert_line_status(
        con,
        [
            {
                **ln,
                "qty_allocated": 0,
                "qty_promised": 0,
                "qty_unpromised": 0,
                "run_id": "alloc",
            }
            for ln in w.lines
        ],
    )
    insert(
        con,
        "supply_lots",
        [
            {"sku": s, "supply_kind": k, "supply_ref": "L1", "qty": q, "usable": True}
            for s in w.in_stock
            for k, q in (("stock", 2), ("po", 5))
        ],
    )
    insert(
        con,
        "outbox",
        [
            {
                **m,
                "attempts": 0,
                "run_id": "earlier",
                "to_email": "x@y.z",
                "subject": "s",
                "body_text": "t",
                "body_html": "h",
                "email_key": m["message_key"],
            }
            for m in w.told
        ],
    )


# --------------------------------------------------------------------------- the reference


def expected(
    w: World,
    *,
    policy: Policy,
    dry_run: bool,
    discount_code: str,
    max_per_email: int,
    templates: dict[str, Templates],
    layout: Layout,
) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The outbox rows and the emails the per-message Python queue would have written."""
    customers = {c["customer_id"]: c for c in w.customers}
    products = {p["sku"]: p for p in w.products}
    placed = {o["order_id"]: o["placed_on"] for o in w.orders}
    open_lines: dict[str, list[Row]] = defaultdict(list)
    for ln in sorted(w.lines, key=lambda r: r["line_no"]):
        if ln["status"] not in ("shipped", "cancelled"):
            open_lines[ln["order_id"]].append(ln)
    told: dict[str, list[Row]] = defaultdict(list)
    for m in sorted(w.told, key=lambda r: (r["created_at"], r["message_key"])):
        told[m["order_id"]].append(m)
    existing = {m["message_key"] for m in w.told}

    msgs = []
    for order_id, rows in open_lines.items():
        customer_id = rows[0]["customer_id"]
        if order_id not in placed or customer_id not in customers:
            continue
        cu = customers[customer_id]
        views = []
        for r in rows:
            p = products.get(r["sku"])
            subs = sorted(s for s in (p["substitute_skus"] if p else []) if s in w.in_stock)
            name = p["name"] if p and p["name"] is not None else r["sku"]
            views.append(
                LineView(
                    r["line_no"],
                    r["sku"],
                    name,
                    r["qty_ordered"] - r["qty_shipped"],
                    r["status"],
                    r["promised_date"],
                    tuple(subs),
                )
            )
        state = order_state(views)
        earlier = told[order_id]
        prev = OrderState.from_json(earlier[-1]["state"]) if earlier else None
        dated = [OrderState.from_json(m["state"]).promised_date for m in earlier]
        history = History(
            next((d for d in dated if d is not None), None),
            any(m["kind"] == "delay_apology" for m in earlier),
            any(m["kind"] == "cancellation_offer" for m in earlier),
        )
        kind = choose_message(
            prev, state, history=history, policy=policy, placed_on=placed[order_id], today=TODAY
        )
        if kind is None:
            continue
        key = message_key(customer_id, order_id, kind, state)
        section = render(
            templates[kind],
            customer_name=cu["name"],
            order_id=order_id,
            state=state,
            lines=views,
            locale=cu["locale"],
            extra={
                "discount_code": discount_code,
                "reason": outbox._REASONS.get(state.condition, ""),
            },
        )
        reason = None
        if not cu["email_opt_in"]:
            reason = "customer opted out of email (email_opt_in=false)"
        elif not is_deliverable_address(cu["email"]):
            reason = "not a deliverable email address"
        elif dry_run:
            reason = "dry run: recorded, not sent (`backorders emails` renders it)"
            key = preview_key(key)  # a preview never blocks the real message
        if key in existing:
            continue
        msgs.append((key, customer_id, order_id, kind, reason, cu, section, state))

    by_key = {m[0]: m for m in msgs}
    plan = plan_emails(
        [(m[1], "pending" if m[4] is None else "suppressed", m[2], m[0]) for m in msgs],
        max_per_email=max_per_email,
    )
    email_of = {k: email_key_for(keys) for keys in plan for k in keys}
    rows_ = set()
    for key, customer_id, order_id, kind, reason, cu, section, state in msgs:
        alone = compose(layout, customer_name=cu["name"], parts=[(order_id, section)])
        rows_.add(
            (
                key,
                customer_id,
                order_id,
                kind,
                "pending" if reason is None else "suppressed",
                reason,
                cu["email"],
                alone.subject,
                alone.text,
                alone.html,
                state.to_json(),
                email_of[key],
            )
        )
    emails_ = set()
    for keys in plan:
        ms = [by_key[k] for k in keys]
        cu = ms[0][5]
        body = compose(layout, customer_name=cu["name"], parts=[(m[2], m[6]) for m in ms])
        emails_.add(
            (
                email_key_for(keys),
                ms[0][1],
                cu["email"],
                cu["name"],
                body.subject,
                body.text,
                body.html,
                tuple(sorted({m[3] for m in ms})),
                tuple(keys),
            )
        )
    return rows_, emails_


def queued(
    con: duckdb.DuckDBPyConnection, run_id: str, *, discount_code: str, chunk: int
) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """What the run wrote: its outbox rows and the emails that carry them, with the texts
    rendered from them (EmailRenderer, as the sender renders them, `chunk` keys a call)."""
    rows = con.execute(
        "select message_key, customer_id, order_id, kind, status, last_error, to_email, "
        "state::varchar, email_key, subject, body_text, body_html from outbox "
        "where run_id = $r",
        {"r": run_id},
    ).fetchall()
    emails = con.execute(
        "select email_key, customer_id, to_email, to_name, kinds, message_keys, subject, "
        "body_text, body_html from outbox_emails where email_key in "
        "(select email_key from outbox where run_id = $r)",
        {"r": run_id},
    ).fetchall()
    # nothing rendered is stored any more (migration 008)
    assert all(r[9:] == (None, None, None) for r in rows)
    assert all(e[6:] == (None, None, None) for e in emails)
    renderer = outbox.EmailRenderer(con, discount_code=discount_code)
    said: dict[str, Rendered] = {}
    sent: dict[str, Rendered] = {}
    for i in range(0, max(len(rows), len(emails)), chunk):
        said.update(renderer.messages([r[0] for r in rows[i : i + chunk]]))
        sent.update(renderer.emails([e[0] for e in emails[i : i + chunk]]))
    renderer.close()
    rows_ = {(*r[:7], said[r[0]].subject, said[r[0]].text, said[r[0]].html, *r[7:9]) for r in rows}
    emails_ = {
        (*e[:4], sent[e[0]].subject, sent[e[0]].text, sent[e[0]].html, tuple(e[4]), tuple(e[5]))
        for e in emails
    }
    return rows_, emails_


# --------------------------------------------------------------------------- the property

# Templates with every corner of string.Template: $$, ${braced}, unknown names, a stray $,
# the customer's name in a subject (one line however it is written), data in the layout.
ODD_TEMPLATES = {
    kind: Templates(
        "$$ ${order_id} for $customer_name: $promised_date $unknown $",
        f"{kind} $$5 ${{order_id}}x $lines\n$reason|$discount_code|$promised_date $nope\n",
        f"<h1>{kind}</h1><p>$customer_name &amp; ${{order_id}}</p><ul>$lines</ul>$reason $$\n",
    )
    for kind in KINDS
}
CONFIG_TEMPLATES = (outbox.load_templates(), outbox.load_layout())
ODD_LAYOUT = Layout(
    "Orders: $order_ids ($$) $customer_name",
    "Dear $customer_name $$\n$sections\n-- $customer_name\n",
    "<div>$customer_name</div>$sections<i>${customer_name}</i> $x\n",
)


@hsettings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    w=worlds(),
    policy=policies,
    dry_run=st.booleans(),
    discount_code=texts,
    max_per_email=st.integers(1, 3),
    chunk=st.sampled_from([10_000, 10_000, 1, 2, 3]),
    odd=st.booleans(),
)
def test_sql_queue_equals_the_pure_reference(
    con: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
    w: World,
    policy: Policy,
    dry_run: bool,
    discount_code: str,
    max_per_email: int,
    chunk: int,
    odd: bool,
) -> None:
    # the split modules read these names from their own namespaces (outbox re-exports them)
    monkeypatch.setattr(outbox_queue, "MAX_MESSAGES_PER_EMAIL", max_per_email)
    templates, layout = (ODD_TEMPLATES, ODD_LAYOUT) if odd else CONFIG_TEMPLATES
    monkeypatch.setattr(email_renderer, "load_templates", lambda: templates)
    monkeypatch.setattr(email_renderer, "load_layout", lambda: layout)
    load(con, w)
    want_rows, want_emails = expected(
        w,
        policy=policy,
        dry_run=dry_run,
        discount_code=discount_code,
        max_per_email=max_per_email,
        templates=templates,
        layout=layout,
    )

    result = outbox.queue_messages(
        con,
        run_id="r",
        now=NOW,
        dry_run=dry_run,
        policy=policy,
        today=TODAY,
    )

    got_rows, got_emails = queued(con, "r", discount_code=discount_code, chunk=chunk)
    for r in want_rows:
        event(f"kind {r[3]}")
        event(f"reason {r[5]}")
    event(f"combined emails: {any(len(e[8]) > 1 for e in want_emails)}")
    assert got_rows == want_rows
    assert got_emails == want_emails
    assert result.queued + result.suppressed == len(want_rows)
    assert result.suppressed == sum(1 for r in want_rows if r[4] == "suppressed")
    assert result.emails == len(want_emails)
    assert audit.verify(con) == []
    again = outbox.queue_messages(
        con, run_id="r2", now=NOW, dry_run=dry_run, policy=policy, today=TODAY
    )
    assert (again.queued, again.suppressed) == (0, 0)


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(addresses=st.lists(st.one_of(odd_emails, st.text(max_size=15)), min_size=1, max_size=40))
def test_sql_suppresses_exactly_the_addresses_is_deliverable_address_refuses(
    con: duckdb.DuckDBPyConnection, addresses: list[str]
) -> None:
    customers = [
        {
            "customer_id": f"C{i}",
            "email": a,
            "name": None,
            "tier": "standard",
            "locale": None,
            "email_opt_in": True,
            "updated_at": NOW,
        }
        for i, a in enumerate(addresses)
    ]
    lines = [
        {
            "order_id": f"O{i}",
            "line_no": 1,
            "customer_id": f"C{i}",
            "sku": "S",
            "qty_ordered": 1,
            "qty_shipped": 0,
            "status": "unpromised",
            "promised_date": None,
        }
        for i in range(len(addresses))
    ]
    orders = [
        {"order_id": f"O{i}", "customer_id": f"C{i}", "placed_on": TODAY}
        for i in range(len(addresses))
    ]
    load(con, World(customers, [], [], orders, lines, []))

    outbox.queue_messages(con, run_id="r", now=NOW, dry_run=False, today=TODAY)

    got = dict(con.execute("select to_email, status from outbox").fetchall())
    for a in addresses:
        assert got[a] == ("pending" if is_deliverable_address(a) else "suppressed"), repr(a)


def test_a_repeated_customer_key_stops_queueing_and_writes_nothing(
    con: duckdb.DuckDBPyConnection,
) -> None:
    customer = {
        "customer_id": "C1",
        "email": "ann@shop.test",
        "name": "Ann",
        "tier": "standard",
        "locale": "en-GB",
        "email_opt_in": True,
        "updated_at": NOW,
    }
    line = {
        "order_id": "O1",
        "line_no": 1,
        "customer_id": "C1",
        "sku": "S",
        "qty_ordered": 1,
        "qty_shipped": 0,
        "status": "unpromised",
        "promised_date": None,
    }
    order = {"order_id": "O1", "customer_id": "C1", "placed_on": TODAY}
    load(con, World([customer, customer], [], [], [order], [line], []))

    with pytest.raises(ValueError, match="queued twice"):
        outbox.queue_messages(con, run_id="r", now=NOW, dry_run=False, today=TODAY)

    assert con.execute("select count(*) from outbox").fetchone() == (0,)
    assert con.execute("select count(*) from audit_log").fetchone() == (0,)
