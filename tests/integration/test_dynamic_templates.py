"""SendGrid dynamic templates: payload shape, data read at send time, fallback, validation."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backorders.adapters import outbox, store
from backorders.adapters.sendgrid_sender import SendGridSender
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from backorders.domain.email import OutgoingEmail
from backorders.domain.messages import format_date
from backorders.settings import load_settings
from tests.integration.conftest import allocate_demo

pytestmark = pytest.mark.integration
KEY = "SG.template-test-key-123"
SPEC = DemoSpec(seed=3, scale=1)
IDS = {
    "backorder_confirmed": "d-" + "1" * 32,
    "promise_changed": "d-" + "2" * 32,
    "delay_apology": "d-" + "3" * 32,
    "ready_to_ship": "d-" + "4" * 32,
    "cancellation_offer": "d-" + "5" * 32,
    "combined": "d-" + "c" * 32,
}


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def queued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file after one cycle of the demo data with its messages queued (built once)."""
    tmp = tmp_path_factory.mktemp("templates")
    generate(tmp / "landing", SPEC)
    db = tmp / "queued.duckdb"
    with store.connect(db) as c:
        allocate_demo(c, tmp / "landing", SPEC.as_of)
        outbox.queue_messages(c, run_id="r1", now=_now(), dry_run=False)
    return db


@pytest.fixture
def con(queued: Path, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private copy of the queued database, with only a few emails left pending."""
    db = tmp_path / "db.duckdb"
    db.write_bytes(queued.read_bytes())
    c = store.connect(db)
    keep = c.execute(
        "with e as (select e.email_key, len(e.message_keys) as n, e.kinds from outbox_emails e "
        "where e.email_key in (select email_key from outbox where status = 'pending')) "
        "(select email_key from e where n = 1 and kinds = ['backorder_confirmed'] "
        "order by email_key limit 6) union all "
        "(select email_key from e where n = 1 and kinds = ['cancellation_offer'] "
        "order by email_key limit 2) union all "
        "(select email_key from e where n > 1 order by email_key limit 4)"
    ).fetchall()
    c.execute(
        "update outbox set status = 'suppressed', last_error = 'test: not sent' "
        "where status = 'pending' and email_key not in (select unnest($k::varchar[]))",
        {"k": [k for (k,) in keep]},
    )
    yield c
    c.close()


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as f:
        yield f


def _sender(url: str) -> SendGridSender:
    return SendGridSender(
        api_key=KEY, host=url, from_email="care@shop.test", timeout_s=5.0, sleep=lambda _s: None
    )


def _send(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid, ids: dict[str, str]
) -> outbox.SendResult:
    return outbox.send_pending(
        con,
        _sender(fake.url),
        run_id="r1",
        now=_now,
        progress=lambda _: None,
        options=outbox.SendOptions(template_ids=ids, discount_code="SORRY-10"),
    )


def _pending_emails(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[list[str], list[str]]]:
    """email_key -> (kinds, message keys) of the emails still pending."""
    rows = con.execute(
        "select email_key, kinds, message_keys from outbox_emails where email_key in "
        "(select email_key from outbox where status = 'pending')"
    ).fetchall()
    return {k: (kinds, mkeys) for k, kinds, mkeys in rows}


def test_template_emails_carry_template_id_and_data_instead_of_content(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    emails = _pending_emails(con)
    combined = {k for k, (_, mkeys) in emails.items() if len(mkeys) > 1}
    assert len(emails) == 12 and len(combined) == 4

    result = _send(con, fake, IDS)

    assert result.sent == sum(len(m) for _, m in emails.values())
    assert {m["template_id"] for m in fake.messages} == {
        IDS["backorder_confirmed"],
        IDS["cancellation_offer"],
        IDS["combined"],
    }
    for m in fake.messages:  # one template per request; no subject or content of ours
        assert "content" not in m and "subject" not in m
        for p in m["personalizations"]:
            assert set(p) == {"to", "custom_args", "dynamic_template_data"}
            assert "subject" not in p and "substitutions" not in p
    got = {d["message_key"]: d for d in fake.deliveries()}
    assert set(got) == set(emails)
    for key, (kinds, mkeys) in emails.items():
        d = got[key]
        data = d["dynamic_template_data"]
        assert d["template_id"] == (IDS["combined"] if key in combined else IDS[kinds[0]])
        assert len(data["orders"]) == len(mkeys)
        assert data["customer_name"] and "\n" not in data["customer_name"]
        assert data["subject"] and data["locale"]
        assert data["order_ids"] == ", ".join(o["order_id"] for o in data["orders"])
        if key not in combined:  # one order: its fields at the top level too
            assert data["order_id"] == data["orders"][0]["order_id"]
            assert data["lines"] == data["orders"][0]["lines"]


def test_template_data_tells_each_order_as_queued_with_lines_and_dates_in_locale(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    _send(con, fake, IDS)

    told = {
        order_id: (kind, json.loads(state), locale)
        for order_id, kind, state, locale in con.execute(
            "select o.order_id, o.kind, o.state::varchar, c.locale from outbox o "
            "join customers c using (customer_id) where o.status = 'sent'"
        ).fetchall()
    }
    line_rows = con.execute(
        "select l.order_id, l.line_no, l.sku, l.qty_ordered - l.qty_shipped, l.status, "
        "l.promised_date from line_status l where l.status not in ('shipped', 'cancelled') "
        "and l.order_id in (select order_id from outbox where status = 'sent')"
    ).fetchall()
    lines = {(o, n): (sku, qty, st, pd) for o, n, sku, qty, st, pd in line_rows}
    orders = [o for d in fake.deliveries() for o in d["dynamic_template_data"]["orders"]]
    assert len(orders) == len(told)
    dated = 0
    for o in orders:
        kind, state, locale = told[o["order_id"]]
        assert o["kind"] == kind and o["condition"] == state["condition"]
        assert o["promised_date_iso"] == state["promised_date"]
        pd = date.fromisoformat(state["promised_date"]) if state["promised_date"] else None
        assert o["promised_date"] == format_date(pd, locale)
        dated += pd is not None
        assert o["lines"], "every order has lines"
        for ln in o["lines"]:
            sku, qty, status, line_date = lines[(o["order_id"], ln["line_no"])]
            assert (ln["sku"], ln["qty"], ln["status"]) == (sku, qty, status)
            assert ln["product_name"] and isinstance(ln["substitutes"], list)
            assert ln["promised_date_iso"] == (line_date.isoformat() if line_date else None)
            assert ln["promised_date"] == format_date(line_date, locale)
        if kind == "cancellation_offer":
            assert o["reason"]
        assert "discount_code" not in o  # only an apology carries it
    assert dated, "some orders have a date (checked in the customer's locale)"


def test_apology_carries_the_discount_code_and_an_offer_its_reason(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    (key,) = con.execute(
        "select email_key from outbox_emails where len(message_keys) = 1 "
        "and kinds = ['backorder_confirmed'] and email_key in "
        "(select email_key from outbox where status = 'pending') order by email_key limit 1"
    ).fetchone()
    con.execute("update outbox set kind = 'delay_apology' where email_key = $k", {"k": key})
    con.execute(
        "update outbox_emails set kinds = ['delay_apology'] where email_key = $k", {"k": key}
    )

    _send(con, fake, IDS)

    got = {d["message_key"]: d for d in fake.deliveries()}
    assert got[key]["template_id"] == IDS["delay_apology"]
    assert got[key]["dynamic_template_data"]["discount_code"] == "SORRY-10"
    offers = [d for d in got.values() if d["template_id"] == IDS["cancellation_offer"]]
    assert offers and all(d["dynamic_template_data"]["reason"] for d in offers)


def test_kinds_without_an_id_fall_back_to_the_rendered_templates(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    emails = _pending_emails(con)
    rendered = {
        k: r.text
        for k, r in outbox.render_emails(con, list(emails), discount_code="SORRY-10").items()
    }

    _send(con, fake, {"backorder_confirmed": IDS["backorder_confirmed"]})  # no combined id

    got = {d["message_key"]: d for d in fake.deliveries()}
    for key, (kinds, mkeys) in emails.items():
        d = got[key]
        if len(mkeys) == 1 and kinds == ["backorder_confirmed"]:
            assert d["template_id"] == IDS["backorder_confirmed"] and d["text"] is None
        else:  # a combined email, or a kind with no id: the config/templates bodies
            assert d["template_id"] is None and d["dynamic_template_data"] is None
            assert d["text"] == rendered[key] and d["subject"]
    assert {m.get("template_id") for m in fake.messages} == {None, IDS["backorder_confirmed"]}


def test_no_template_ids_sends_rendered_bodies_as_before(
    con: duckdb.DuckDBPyConnection, fake: FakeSendGrid
) -> None:
    _send(con, fake, {})
    assert all(m.get("template_id") is None and m["content"] for m in fake.messages)


# --- the sender and the local server ------------------------------------------------------


def _email(key: str, template: str | None, **data: Any) -> OutgoingEmail:
    return OutgoingEmail(
        key,
        f"{key}@example.org",
        "Ada",
        "Subject",
        "text",
        "<p>html</p>",
        categories=("backorder_confirmed",),
        template_id=template,
        template_data=data or None,
    )


def test_one_request_per_template_and_one_per_rendered_email(fake: FakeSendGrid) -> None:
    a, b = "d-" + "a" * 32, "d-" + "b" * 32
    emails = [
        _email("k1", a, n=1),
        _email("k2", b, n=2),
        _email("k3", None),
        _email("k4", a, n=4),
        _email("k5", None),
    ]

    outcomes = _sender(fake.url).send_batch(emails)

    assert [o.status for o in outcomes] == ["sent"] * 5
    by_template = {m.get("template_id"): m for m in fake.messages if m.get("template_id")}
    assert set(by_template) == {a, b} and fake.requests_seen == 4
    assert [p["dynamic_template_data"] for p in by_template[a]["personalizations"]] == [
        {"n": 1},
        {"n": 4},
    ]
    rendered = [m for m in fake.messages if not m.get("template_id")]
    assert len(rendered) == 2 and all(len(m["personalizations"]) == 1 for m in rendered)
    assert all("substitutions" not in m["personalizations"][0] for m in rendered)


def test_template_data_over_the_limit_fails_before_any_request(fake: FakeSendGrid) -> None:
    big = _email("k-big", "d-" + "a" * 32, blob="x" * 10_001)
    ok = _email("k-ok", "d-" + "a" * 32, n=1)

    outcomes = _sender(fake.url).send_batch([big, ok])

    assert [o.status for o in outcomes] == ["failed", "sent"]
    assert outcomes[0].error and "dynamic_template_data" in outcomes[0].error
    assert not outcomes[0].retryable and fake.received_keys() == {"k-ok": 1}


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"{url}/v3/mail/send",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _template_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [
            {"to": [{"email": "a@example.org"}], "dynamic_template_data": {"name": "Ada"}}
        ],
        "from": {"email": "shop@example.com"},
        "template_id": "d-" + "0" * 32,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_template_body(template_id="d-123"), "template_id"),
        (_template_body(template_id="D-" + "0" * 32), "template_id"),
        (_template_body(template_id=42), "template_id"),
        (
            _template_body(
                personalizations=[
                    {"to": [{"email": "a@example.org"}], "dynamic_template_data": ["x"]}
                ]
            ),
            "personalizations.0.dynamic_template_data",
        ),
        (
            _template_body(
                personalizations=[
                    {
                        "to": [{"email": "a@example.org"}],
                        "dynamic_template_data": {"x": "y" * 10_000},
                    }
                ]
            ),
            "personalizations.0.dynamic_template_data",
        ),
        (
            _template_body(
                personalizations=[
                    {"to": [{"email": "a@example.org"}], "substitutions": {"-n-": "Ada"}}
                ]
            ),
            "personalizations.0.substitutions",
        ),
    ],
)
def test_fake_validates_template_requests_as_sendgrid_documents(
    fake: FakeSendGrid, body: dict[str, Any], field: str
) -> None:
    status, answer = _post(fake.url, body)

    assert status == 400
    assert field in [e["field"] for e in answer["errors"]]
    assert fake.messages == []


def test_fake_accepts_and_records_a_template_request_without_subject_or_content(
    fake: FakeSendGrid,
) -> None:
    status, _ = _post(fake.url, _template_body())

    assert status == 202
    (d,) = fake.deliveries()
    assert d["template_id"] == "d-" + "0" * 32
    assert d["dynamic_template_data"] == {"name": "Ada"}


def test_bad_template_id_in_settings_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"promise_changed: 'd-123' is not a SendGrid dynamic"):
        load_settings(sendgrid_template_ids={"promise_changed": "d-123"})
    with pytest.raises(ValueError, match=r"'shipped' is not a message kind"):
        load_settings(sendgrid_template_ids={"shipped": "d-" + "0" * 32})
    s = load_settings(sendgrid_template_ids=IDS)
    assert outbox.SendOptions.from_settings(s).template_ids == IDS
