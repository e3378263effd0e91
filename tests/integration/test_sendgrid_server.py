"""The local SendGrid server itself, over real HTTP: as strict as SendGrid documents it."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from python_http_client.exceptions import (
    ForbiddenError,
    HTTPError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail

from backorders.devtools.sendgrid_server import FakeSendGrid
from backorders.devtools.sendgrid_server.process import spawn
from backorders.devtools.sendgrid_server.rate_limit import RateLimiter
from tests.integration.test_sendgrid_sender import API_KEY, raw_post, valid_body

pytestmark = pytest.mark.integration

NO_SCOPE_KEY = "SG.no-mail-send-scope.abcdefghijklmnopqrstuvwxyz"
T0 = 1_800_000_000.25  # a quarter into a whole second of the manual clock


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY, forbidden_keys=[NO_SCOPE_KEY]) as server:
        yield server


def body_with(**fields: Any) -> dict[str, Any]:
    return {**valid_body(), **fields}


def post_without_key(url: str, body: object) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url + "/v3/mail/send", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def official_mail() -> Mail:
    return Mail(
        from_email="shop@example.com",
        to_emails="a@example.org",
        subject="hi",
        plain_text_content="hello",
    )


# --- rate limit ---------------------------------------------------------------------------


def _check_sendgrid_headers(headers: dict[str, str], now: float) -> None:
    assert headers["X-RateLimit-Limit"] == "3"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == str(int(now) + 1)  # the window's end
    assert "Retry-After" not in headers


def _check_retry_after_headers(headers: dict[str, str], now: float) -> None:
    assert headers["Retry-After"] == "1"
    assert 3000 < int(headers["X-RateLimit-Reset"]) - now < 4000  # "about an hour" away


def _check_reset_past_headers(headers: dict[str, str], now: float) -> None:
    assert int(headers["X-RateLimit-Reset"]) < now
    assert "Retry-After" not in headers


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("sendgrid", _check_sendgrid_headers),
        ("retry_after", _check_retry_after_headers),
        ("reset_past", _check_reset_past_headers),
    ],
)
def test_rate_limit_answers_429_in_each_header_mode_and_delivers_nothing_refused(
    mode: str, check: Any
) -> None:
    clock = ManualClock()
    with FakeSendGrid(
        api_key=API_KEY, rate_limit_per_s=3, rate_limit_headers=mode, clock=clock
    ) as fake:
        answers = [raw_post(fake.url, valid_body()) for _ in range(5)]

        assert [status for status, _, _ in answers] == [202, 202, 202, 429, 429]
        for _, headers, raw in answers[3:]:
            check(headers, clock.now)
            assert json.loads(raw) == {
                "errors": [{"message": "too many requests", "field": None, "help": None}]
            }
        assert len(fake.messages) == 3
        assert fake.rate_limited_requests == 2
        assert fake.accepted_request_times == [clock.now] * 3


def test_sendgrid_mode_counts_down_remaining_on_every_answer() -> None:
    clock = ManualClock()
    with FakeSendGrid(api_key=API_KEY, rate_limit_per_s=3, clock=clock) as fake:
        remaining = [raw_post(fake.url, valid_body())[1]["X-RateLimit-Remaining"] for _ in "abc"]

    assert remaining == ["2", "1", "0"]


def test_rate_limit_window_reopens_at_its_reset() -> None:
    clock = ManualClock()
    with FakeSendGrid(api_key=API_KEY, rate_limit_per_s=1, clock=clock) as fake:
        first, refused = raw_post(fake.url, valid_body()), raw_post(fake.url, valid_body())
        clock.now = float(refused[1]["X-RateLimit-Reset"])
        reopened = raw_post(fake.url, valid_body())

    assert (first[0], refused[0], reopened[0]) == (202, 429, 202)


def test_refused_and_invalid_requests_count_against_the_window() -> None:
    clock = ManualClock()
    with FakeSendGrid(api_key=API_KEY, rate_limit_per_s=2, clock=clock) as fake:
        invalid = raw_post(fake.url, body_with(personalizations=[]))
        fake.fail_next(1, "500")
        failed = raw_post(fake.url, valid_body())
        third = raw_post(fake.url, valid_body())

    assert (invalid[0], failed[0], third[0]) == (400, 500, 429)
    assert fake.messages == []


def test_official_client_gets_too_many_requests_error_from_the_rate_limit() -> None:
    with FakeSendGrid(api_key=API_KEY, rate_limit_per_s=1, clock=ManualClock()) as fake:
        client = SendGridAPIClient(api_key=API_KEY, host=fake.url)
        assert client.send(official_mail()).status_code == 202

        with pytest.raises(TooManyRequestsError) as refused:
            client.send(official_mail())

    assert refused.value.headers["X-RateLimit-Remaining"] == "0"
    assert len(fake.messages) == 1


@pytest.mark.parametrize(("per_s", "headers"), [(0.5, "sendgrid"), (5, "polite")])
def test_rate_limiter_refuses_a_limit_it_cannot_apply(per_s: float, headers: str) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        RateLimiter(per_s, headers=headers, clock=ManualClock())


def test_cli_serves_the_rate_limit_and_reports_what_it_refused() -> None:
    flags = ["--rate-limit", "1", "--rate-limit-headers", "retry_after", "--latency-ms", "5"]
    proc, url = spawn(["--port", "0", "--key", API_KEY, *flags])
    try:
        # 20 requests span a few one-second windows at most: most of them are refused
        answers = [raw_post(url, valid_body()) for _ in range(20)]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)

    refused = [headers for status, headers, _ in answers if status == 429]
    assert len(refused) >= 10
    assert all(h["Retry-After"] == "1" for h in refused)
    assert f"{len(refused)} answered 429" in stderr
    assert proc.returncode == 0


# --- latency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "status"),
    [(API_KEY, 202), ("SG.wrong", 401), (NO_SCOPE_KEY, 403)],
    ids=["accepted", "wrong key", "key without mail.send"],
)
def test_latency_holds_concurrent_requests_side_by_side(key: str, status: int) -> None:
    # Each request is held 2 s in its own thread: all six are in flight at once. Were the
    # latency missing, or served one request at a time, the peak would stay far below six.
    with FakeSendGrid(api_key=API_KEY, latency_s=2.0, forbidden_keys=[NO_SCOPE_KEY]) as fake:
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda _: raw_post(fake.url, valid_body(), key), range(6)))

        assert [a[0] for a in answers] == [status] * 6
        assert fake.peak_in_flight == 6
        assert fake.in_flight == 0


# --- limits ------------------------------------------------------------------------------------


def _recipients(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"email": f"r{i}@example.org"} for i in range(start, start + n)]


LIMIT_BREACHES = {
    "1001 personalizations": (
        body_with(personalizations=[{"to": _recipients(1, i)} for i in range(1001)]),
        "personalizations",
        "You have provided 1001 personalizations",
    ),
    "1001 recipients over to, cc and bcc": (
        body_with(
            personalizations=[
                {"to": _recipients(400), "cc": _recipients(300, 400)},
                {"to": _recipients(1, 700), "bcc": _recipients(300, 701)},
            ]
        ),
        "personalizations",
        "limit of 1000 total recipients (to + cc + bcc)",
    ),
    "custom_args of 10,000 bytes with the top-level ones": (
        body_with(
            custom_args={"campaign": "x" * 6000},
            personalizations=[{"to": _recipients(1), "custom_args": {"k": "y" * 3991}}],
        ),
        "personalizations.0.custom_args",
        "less than 10000 bytes",
    ),
    "substitutions over 10,000 bytes": (
        body_with(personalizations=[{"to": _recipients(1), "substitutions": {"-b-": "z" * 9998}}]),
        "personalizations.0.substitutions",
        "10000 bytes",
    ),
    "a comma in a recipient's name": (
        body_with(personalizations=[{"to": [{"email": "a@example.org", "name": "Doe, Jane"}]}]),
        "personalizations.0.to.0.name",
        "cannot include either the ; or , characters",
    ),
    "one address twice in a personalization": (
        body_with(personalizations=[{"to": _recipients(1), "cc": _recipients(1)}]),
        "personalizations.0.cc.0.email",
        "unique between to, cc, and bcc",
    ),
    "a non-ASCII from address": (
        body_with(**{"from": {"email": "bestellung@bäckerei.example"}}),
        "from.email",
        "Unicode",
    ),
}


@pytest.mark.parametrize(("body", "field", "says"), LIMIT_BREACHES.values(), ids=LIMIT_BREACHES)
def test_limit_breach_is_400_naming_the_field_and_delivers_nothing(
    fake: FakeSendGrid, body: dict[str, Any], field: str, says: str
) -> None:
    status, _, raw = raw_post(fake.url, body)

    assert status == 400
    errors = {e["field"]: e["message"] for e in json.loads(raw)["errors"]}
    assert says in errors[field]
    assert fake.messages == []


def test_a_request_just_inside_every_limit_is_accepted(fake: FakeSendGrid) -> None:
    body = body_with(
        personalizations=[
            {"to": _recipients(1, i), "custom_args": {"k": "y" * 9998}} for i in range(999)
        ]
        + [{"to": _recipients(1, 999), "substitutions": {"-b-": "z" * 9997}}],
    )

    assert raw_post(fake.url, body)[0] == 202


def test_body_of_30_mib_or_more_is_413_without_being_read(fake: FakeSendGrid) -> None:
    head = (
        "POST /v3/mail/send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {30 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock:
        sock.sendall(head.encode())
        status_line = sock.makefile("rb").readline()

    assert status_line.split()[1] == b"413"
    assert fake.messages == []


# --- what each recipient receives ------------------------------------------------------------


def test_every_recipient_of_a_request_gets_the_one_shared_subject_and_body(
    fake: FakeSendGrid,
) -> None:
    body = body_with(
        subject="Your order",
        content=[
            {"type": "text/plain", "value": "It ships Monday."},
            {"type": "text/html", "value": "<p>It ships Monday.</p>"},
        ],
        personalizations=[
            {"to": [{"email": "ada@example.org"}], "cc": [{"email": "bob@example.org"}]},
            {"to": [{"email": "cy@example.org"}], "custom_args": {"message_key": "k-cy"}},
            {"to": [{"email": "di@example.org"}], "bcc": [{"email": "ed@example.org"}]},
        ],
    )

    assert raw_post(fake.url, body)[0] == 202
    got = {d["email"]: d for d in fake.recipient_deliveries()}
    assert sorted((email, d["kind"]) for email, d in got.items()) == [
        ("ada@example.org", "to"),
        ("bob@example.org", "cc"),
        ("cy@example.org", "to"),
        ("di@example.org", "to"),
        ("ed@example.org", "bcc"),
    ]
    assert {(d["subject"], d["text"], d["html"]) for d in got.values()} == {
        ("Your order", "It ships Monday.", "<p>It ships Monday.</p>")
    }
    assert got["cy@example.org"]["message_key"] == "k-cy"


def test_substitutions_give_each_personalization_its_own_body_subject_and_custom_args(
    fake: FakeSendGrid,
) -> None:
    body = body_with(
        subject="Order -order-",
        content=[{"type": "text/plain", "value": "Hello -name-, order -order- ships."}],
        custom_args={"ref": "order -order-"},
        personalizations=[
            {
                "to": [{"email": "ada@example.org"}],
                "substitutions": {"-name-": "Ada", "-order-": "1"},
            },
            {
                "to": [{"email": "bob@example.org"}],
                "cc": [{"email": "bea@example.org"}],
                "subject": "About -order-",
                "substitutions": {"-name-": "Bob", "-order-": "2"},
            },
        ],
    )

    assert raw_post(fake.url, body)[0] == 202
    got = {
        d["email"]: (d["subject"], d["text"], d["custom_args"]["ref"])
        for d in fake.recipient_deliveries()
    }
    assert got == {
        "ada@example.org": ("Order 1", "Hello Ada, order 1 ships.", "order 1"),
        "bob@example.org": ("About 2", "Hello Bob, order 2 ships.", "order 2"),
        "bea@example.org": ("About 2", "Hello Bob, order 2 ships.", "order 2"),
    }


def test_a_tag_inside_an_earlier_substituted_value_is_replaced_too(fake: FakeSendGrid) -> None:
    body = body_with(
        content=[{"type": "text/plain", "value": "%body%"}],
        personalizations=[
            {"to": _recipients(1), "substitutions": {"%body%": "50% off -x-", "-x-": "today"}}
        ],
    )

    assert raw_post(fake.url, body)[0] == 202
    assert fake.recipient_deliveries()[0]["text"] == "50% off today"


def test_dynamic_template_body_is_unknown_but_each_recipient_gets_its_data(
    fake: FakeSendGrid,
) -> None:
    body = {
        "from": {"email": "shop@example.com"},
        "template_id": "d-0123456789abcdef0123456789abcdef",
        "personalizations": [
            {"to": [{"email": "ada@example.org"}], "dynamic_template_data": {"n": "Ada"}},
            {"to": [{"email": "bob@example.org"}], "dynamic_template_data": {"n": "Bob"}},
        ],
    }

    assert raw_post(fake.url, body)[0] == 202
    got = {d["email"]: d for d in fake.recipient_deliveries()}
    assert {e: d["dynamic_template_data"] for e, d in got.items()} == {
        "ada@example.org": {"n": "Ada"},
        "bob@example.org": {"n": "Bob"},
    }
    assert all(d["text"] is None and d["html"] is None for d in got.values())


def test_sandbox_request_is_validated_but_delivers_to_nobody(fake: FakeSendGrid) -> None:
    status, _, _ = raw_post(fake.url, body_with(mail_settings={"sandbox_mode": {"enable": True}}))

    assert status == 200
    assert fake.recipient_deliveries() == []


def test_a_repeated_request_is_delivered_twice_as_sendgrid_has_no_idempotency(
    fake: FakeSendGrid,
) -> None:
    body = body_with(custom_args={"message_key": "k1"})

    ids = [raw_post(fake.url, body)[1]["X-Message-Id"] for _ in range(2)]

    assert ids[0] != ids[1]
    assert fake.received_keys()["k1"] == 2
    assert [d["email"] for d in fake.recipient_deliveries()] == ["a@example.org"] * 2


def test_accepted_request_times_give_the_accepted_rate() -> None:
    clock = ManualClock(1000.0)
    with FakeSendGrid(api_key=API_KEY, clock=clock) as fake:
        for _ in range(11):
            assert raw_post(fake.url, valid_body())[0] == 202
            clock.now += 0.25

    assert fake.accepted_request_times == [1000.0 + 0.25 * i for i in range(11)]
    assert fake.accepted_rate_per_s() == pytest.approx(4.0)


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "status", "message", "client_error"),
    [
        (None, 401, "authorization required", UnauthorizedError),
        (
            "SG.wrong",
            401,
            "The provided authorization grant is invalid, expired, or revoked",
            UnauthorizedError,
        ),
        (NO_SCOPE_KEY, 403, "access forbidden", ForbiddenError),
    ],
    ids=["missing key", "wrong key", "key without mail.send"],
)
def test_bad_key_gets_sendgrids_error_body_and_nothing_is_delivered(
    fake: FakeSendGrid,
    key: str | None,
    status: int,
    message: str,
    client_error: type[HTTPError],
) -> None:
    if key is None:
        got_status, raw = post_without_key(fake.url, valid_body())
    else:
        got_status, _, raw = raw_post(fake.url, valid_body(), key=key)
    # the official client always sends a key: a missing one is tried over urllib alone
    with pytest.raises(client_error) as raised:
        SendGridAPIClient(api_key=key or "SG.unset", host=fake.url).send(official_mail())

    expected = {"errors": [{"message": message, "field": None, "help": None}]}
    assert (got_status, json.loads(raw)) == (status, expected)
    if key is not None:
        assert json.loads(raised.value.body) == expected
    assert fake.messages == []
    assert fake.rate_limited_requests == 0
