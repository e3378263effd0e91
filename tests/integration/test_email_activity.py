"""SendGrid's Email Activity API: the local server's GET /v3/messages and the sender's lookup."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from backorders.adapters.sendgrid_sender import SendGridSender, activity_query
from backorders.devtools.sendgrid_server import FakeSendGrid, parse_activity_query
from backorders.domain.email import OutgoingEmail

pytestmark = pytest.mark.integration
KEY = "SG.activity-test-key-abcdefgh.ijklmnopqrstuvwxyz0123"


class Clock:
    """One clock for the server's feed and the sender's waits; sleeping advances it."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as f:
        yield f


def _sender(url: str, key: str = KEY, **kw: Any) -> SendGridSender:
    kw.setdefault("sleep", lambda _s: None)
    return SendGridSender(api_key=key, host=url, from_email="care@shop.test", timeout_s=5.0, **kw)


def _email(key: str, to: str) -> OutgoingEmail:
    return OutgoingEmail(key, to, None, f"About {key}", "text", "<p>html</p>")


def _get(url: str, params: dict[str, Any], key: str = KEY, plus: bool = False) -> tuple[int, Any]:
    quote = urllib.parse.quote_plus if plus else urllib.parse.quote
    qs = urllib.parse.urlencode(params, quote_via=quote)
    req = urllib.request.Request(
        f"{url}/v3/messages?{qs}", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fake_lists_accepted_messages_as_sendgrid_documents(fake: FakeSendGrid) -> None:
    sender = _sender(fake.url)
    outcomes = sender.send_batch([_email(f"k{i}", f"c{i}@example.org") for i in range(3)])
    xid = outcomes[0].provider_message_id
    assert xid

    for plus in (False, True):  # %20 as SendGrid's docs, + as urlencode (the Python client)
        status, body = _get(
            fake.url, {"query": activity_query(["k0", "k2"]), "limit": 10}, plus=plus
        )
        assert status == 200
        assert sorted(m["to_email"] for m in body["messages"]) == [
            "c0@example.org",
            "c2@example.org",
        ]
    for m in body["messages"]:
        assert set(m) == {
            "from_email",
            "msg_id",
            "subject",
            "to_email",
            "status",
            "opens_count",
            "clicks_count",
            "last_event_time",
        }
        # one request per rendered email: each message's id starts with its request's id
        xids = {o.provider_message_id for o in outcomes}
        assert m["msg_id"].split(".")[0] in xids and m["from_email"] == "care@shop.test"
    status, body = _get(fake.url, {"query": f"msg_id LIKE '{xid}%'", "limit": 1})
    assert status == 200 and len(body["messages"]) == 1


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"query": "unique_args['message_key']=\"k\"", "limit": 0}, 400, "limit"),
        ({"query": "unique_args['message_key']=\"k\"", "limit": 1001}, 400, "limit"),
        ({"query": 'colour="red"', "limit": 10}, 400, "'colour' is not a known field"),
        ({"query": "to_email =", "limit": 10}, 400, "invalid syntax"),
    ],
)
def test_fake_refuses_bad_activity_queries(
    fake: FakeSendGrid, params: dict[str, Any], status: int, message: str
) -> None:
    got, body = _get(fake.url, params)
    assert got == status and message in body["errors"][0]["message"]


def test_fake_activity_needs_the_key_and_can_be_unavailable(fake: FakeSendGrid) -> None:
    assert _get(fake.url, {"limit": 1}, key="wrong")[0] == 401
    fake.activity = "no_addon"
    status, body = _get(fake.url, {"limit": 1})
    assert (status, body["errors"][0]["message"]) == (400, "authorization required")
    fake.activity = "forbidden"
    status, body = _get(fake.url, {"limit": 1})
    assert (status, body["errors"][0]["message"]) == (403, "access forbidden")


def test_fake_feed_lags_and_leaves_out_sandbox_mail() -> None:
    clock = Clock()
    with FakeSendGrid(api_key=KEY, activity_lag_s=30, clock=clock) as fake:
        _sender(fake.url).send(_email("k1", "a@example.org"))
        _sender(fake.url, sandbox=True).send(_email("k2", "b@example.org"))
        assert fake.activity_messages() == []
        clock.t += 31
        assert [m["unique_args"]["message_key"] for m in fake.activity_messages()] == ["k1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("unique_args['message_key']=\"a\"", {"a"}),
        ('unique_args["message_key"] IN ("a","c")', {"a", "c"}),
        ("(unique_args['message_key'] NOT IN (\"a\"))", {"b", "c"}),
        ("to_email LIKE '%@two.org' OR unique_args['message_key']=\"a\"", {"a", "b"}),
        ('to_email="b@two.org" AND unique_args[\'message_key\']!="b"', set()),
        ("msg_id=\u201cx-c\u201d", {"c"}),
    ],
)
def test_fake_query_language(query: str, expected: set[str]) -> None:
    messages = [
        {"msg_id": "x-a", "to_email": "a@one.org", "unique_args": {"message_key": "a"}},
        {"msg_id": "x-b", "to_email": "b@two.org", "unique_args": {"message_key": "b"}},
        {"msg_id": "x-c", "to_email": "c@one.org", "unique_args": {"message_key": "c"}},
    ]
    match = parse_activity_query(query)
    assert {m["unique_args"]["message_key"] for m in messages if match(m)} == expected


def test_lookup_finds_sent_emails_and_proves_the_rest_absent(fake: FakeSendGrid) -> None:
    sender = _sender(fake.url)
    outcomes = sender.send_batch([_email("k1", "a@example.org"), _email("k2", "b@example.org")])
    xid = {o.message_key: o.provider_message_id for o in outcomes}

    got = sender.lookup_activity(
        [("k1", "A@Example.org"), ("k2", "b@example.org"), ("k3", "c@example.org")],
        keys_per_query=2,
    )

    assert set(got.found) == {"k1", "k2"} and got.not_found == {"k3"} and got.error is None
    assert all(v.startswith(f"{xid[k]}.") for k, v in got.found.items())
    assert fake.activity_requests == 2


def test_lookup_puts_one_recipient_once_per_query(fake: FakeSendGrid) -> None:
    sender = _sender(fake.url)
    sender.send(_email("k1", "same@example.org"))
    sender.send(_email("k2", "same@example.org"))

    got = sender.lookup_activity(
        [("k1", "same@example.org"), ("k2", "same@example.org"), ("k3", "same@example.org")]
    )

    assert fake.activity_requests == 3  # each key of that recipient in a query of its own
    assert set(got.found) == {"k1", "k2"} and got.not_found == {"k3"}
    assert got.found["k1"] != got.found["k2"]


def test_an_answer_that_cannot_be_matched_proves_nothing(fake: FakeSendGrid) -> None:
    _sender(fake.url).send(_email("k1", "a@example.org"))

    got = _sender(fake.url).lookup_activity([("k1", "someone-else@example.org")])

    assert not got.found and not got.not_found  # neither sent nor lost: stays unknown
    assert got.error and "could not be matched" in got.error


def test_lookup_stops_at_its_request_budget(fake: FakeSendGrid) -> None:
    got = _sender(fake.url).lookup_activity(
        [(f"k{i}", f"c{i}@example.org") for i in range(5)], keys_per_query=1, max_queries=2
    )
    assert fake.activity_requests == 2 and len(got.not_found) == 2
    assert got.error and "stopped after 2" in got.error


def test_lookup_waits_out_the_rate_limit() -> None:
    clock = Clock()
    with FakeSendGrid(api_key=KEY, clock=clock, activity_rate_per_min=2) as fake:
        sender = _sender(fake.url, sleep=clock.sleep, clock=clock, max_backoff_s=120)
        sender.send_batch([_email(f"k{i}", f"c{i}@example.org") for i in range(3)])

        got = sender.lookup_activity(
            [(f"k{i}", f"c{i}@example.org") for i in range(3)], keys_per_query=1
        )

        assert set(got.found) == {"k0", "k1", "k2"} and got.error is None
        assert fake.activity_requests == 4  # the third was refused once (429), then answered
        assert len(clock.slept) == 1 and 59 <= clock.slept[0] <= 62  # until X-RateLimit-Reset


def test_lookup_errors_and_logs_never_reveal_the_key(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.activity = "down"
    got = _sender(fake.url).lookup_activity([("k1", "a@example.org")])
    wrong = _sender(fake.url, key="SG.wrong-key-abcdefgh.ijklmnop").lookup_activity(
        [("k1", "a@example.org")]
    )
    assert got.error and "gave up" in got.error
    assert wrong.error and "not available to this key (HTTP 401" in wrong.error
    text = caplog.text + got.error + wrong.error
    assert KEY not in text and "SG.wrong-key" not in text
