"""SendGridSender (official client) against a real FakeSendGrid on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import selectors
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from backorders.adapters.sendgrid_sender import SendGridSender
from backorders.devtools.sendgrid_server import FakeSendGrid
from backorders.domain.email import OutgoingEmail

pytestmark = pytest.mark.integration

API_KEY = "SG.unit-test-key-abcdefgh.ijklmnopqrstuvwxyz0123456789ABCD"
REPO_ROOT = Path(__file__).resolve().parents[2]


class RecordingSleep:
    """Stand-in for time.sleep that records requested delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


SenderFactory = Callable[..., SendGridSender]


@pytest.fixture
def make_sender(fake: FakeSendGrid, sleep: RecordingSleep) -> SenderFactory:
    def _make(**overrides: Any) -> SendGridSender:
        kwargs: dict[str, Any] = {
            "api_key": API_KEY,
            "host": fake.url,
            "from_email": "backorders@shop.example.com",
            "from_name": "Shop Backorders",
            "timeout_s": 2.0,
            "max_attempts": 5,
            "sleep": sleep,
            "rng": random.Random(42),
        }
        kwargs.update(overrides)
        return SendGridSender(**kwargs)

    return _make


def an_email(key: str = "bo-1001-line-1-notice-1", **overrides: Any) -> OutgoingEmail:
    fields: dict[str, Any] = {
        "message_key": key,
        "to_email": "customer@example.org",
        "to_name": "Ada Customer",
        "subject": "Your backordered item",
        "text": "It ships next week.",
        "html": "<p>It ships next week.</p>",
        "categories": ("backorder", "notice"),
    }
    fields.update(overrides)
    return OutgoingEmail(**fields)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_post(url: str, body: object, key: str = API_KEY) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url + "/v3/mail/send",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def valid_body() -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": "a@example.org"}]}],
        "from": {"email": "shop@example.com"},
        "subject": "hi",
        "content": [{"type": "text/plain", "value": "hello"}],
    }


# --- happy path and payload --------------------------------------------------------------


def test_send_returns_sent_with_provider_message_id(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    outcome = make_sender().send(an_email())

    assert outcome.status == "sent"
    assert outcome.attempts == 1
    assert outcome.error is None
    assert outcome.provider_message_id == fake.messages[0]["x_message_id"]
    assert sleep.delays == []


def test_custom_args_carry_message_key(fake: FakeSendGrid, make_sender: SenderFactory) -> None:
    make_sender().send(an_email("bo-7-line-3-notice-1"))

    assert fake.messages[0]["custom_args"] == {"message_key": "bo-7-line-3-notice-1"}
    assert fake.received_keys() == {"bo-7-line-3-notice-1": 1}


def test_payload_has_one_personalization_plain_then_html_and_categories(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    make_sender().send(an_email())

    message = fake.messages[0]
    assert message["personalizations"] == [
        {"to": [{"email": "customer@example.org", "name": "Ada Customer"}]}
    ]
    assert message["from"] == {"email": "backorders@shop.example.com", "name": "Shop Backorders"}
    assert [c["type"] for c in message["content"]] == ["text/plain", "text/html"]
    assert message["categories"] == ["backorder", "notice"]
    assert "mail_settings" not in message
    assert message["sandbox"] is False


def test_sandbox_flag_sent(fake: FakeSendGrid, make_sender: SenderFactory) -> None:
    outcome = make_sender(sandbox=True).send(an_email())

    assert outcome.status == "sent"
    assert fake.messages[0]["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert fake.messages[0]["sandbox"] is True


def test_subject_with_newline_cannot_inject_headers(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    email = an_email(
        subject="Order 42\r\nBcc: attacker@evil.example",
        to_name="Mallory\nX-Injected: yes",
    )
    outcome = make_sender(from_name="Shop\r\nReply-To: evil@evil.example").send(email)

    assert outcome.status == "sent"
    message = fake.messages[0]
    for value in (
        message["subject"],
        message["personalizations"][0]["to"][0]["name"],
        message["from"]["name"],
    ):
        assert "\r" not in value and "\n" not in value
    assert message["subject"] == "Order 42 Bcc: attacker@evil.example"


def test_undeliverable_recipient_is_failed_without_any_request(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    outcome = make_sender().send(an_email(to_email="victim@example.org\r\nBcc: x@evil.example"))

    assert outcome.status == "failed"
    assert outcome.attempts == 0
    assert fake.requests_seen == 0


# --- retries -------------------------------------------------------------------------------


def test_429_waits_until_rate_limit_reset_then_sends(sleep: RecordingSleep) -> None:
    now = 1_000_000.25  # the fake answers X-RateLimit-Reset = int(now) + 1 = 1_000_001
    with FakeSendGrid(api_key=API_KEY, clock=lambda: now) as server:
        server.fail_next(1, "429")
        sender = SendGridSender(
            api_key=API_KEY,
            host=server.url,
            from_email="backorders@shop.example.com",
            sleep=sleep,
            clock=lambda: now,
        )
        outcome = sender.send(an_email())

        assert outcome.status == "sent"
        assert outcome.attempts == 2
        assert sleep.delays == [pytest.approx(0.75)]
        assert server.received_keys() == {an_email().message_key: 1}


def test_429_with_an_absurdly_far_reset_backs_off_instead_of_waiting_for_it(
    sleep: RecordingSleep,
) -> None:
    with FakeSendGrid(api_key=API_KEY, clock=lambda: 2_000_000_000.0) as server:
        server.fail_next(1, "429")
        sender = SendGridSender(
            api_key=API_KEY,
            host=server.url,
            from_email="backorders@shop.example.com",
            max_backoff_s=5.0,
            sleep=sleep,
            clock=lambda: 2_000_000_000.0 - 3600,  # the reset is an hour away
        )
        outcome = sender.send(an_email())

    assert outcome.status == "sent"
    assert len(sleep.delays) == 1 and 0 <= sleep.delays[0] <= 0.5  # the first backoff step


def test_500_then_success_sends_exactly_once(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    fake.fail_next(1, "500")

    outcome = make_sender().send(an_email())

    assert outcome.status == "sent"
    assert outcome.attempts == 2
    assert len(sleep.delays) == 1
    assert fake.received_keys() == {an_email().message_key: 1}
    assert fake.requests_seen == 2


def test_503_until_attempts_exhausted_is_failed_with_full_jitter_backoff(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    fake.fail_next(10, "503")

    outcome = make_sender(max_attempts=4, base_backoff_s=0.5, rng=random.Random(7)).send(an_email())

    assert outcome.status == "failed"
    assert outcome.attempts == 4
    assert outcome.error is not None and "HTTP 503" in outcome.error
    assert "service unavailable" in outcome.error
    assert fake.requests_seen == 4
    assert fake.messages == []
    expected_rng = random.Random(7)
    assert sleep.delays == [expected_rng.uniform(0, 0.5 * 2**i) for i in range(3)]


def test_400_is_failed_without_retry(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    too_many_categories = tuple(f"cat-{i}" for i in range(11))

    outcome = make_sender().send(an_email(categories=too_many_categories))

    assert outcome.status == "failed"
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert outcome.error.startswith("HTTP 400")
    assert "categories" in outcome.error
    assert fake.requests_seen == 1
    assert sleep.delays == []


def test_wrong_key_stops_the_sender_after_one_request_and_key_not_in_error(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    wrong_key = "SG.wrong-key-zyxwvutsrq.ponmlkjihgfedcba9876543210"
    sender = make_sender(api_key=wrong_key)

    outcome = sender.send(an_email())
    later = sender.send(an_email("k-later"))

    assert outcome.status == "not_sent" and later.status == "not_sent"
    assert outcome.attempts == 1 and later.attempts == 0
    assert outcome.error is not None and "HTTP 401" in outcome.error
    assert "authorization grant is invalid" in outcome.error
    assert sender.stop_reason is not None and "check SENDGRID_API_KEY" in sender.stop_reason
    for text in (outcome.error, sender.stop_reason, repr(sender)):
        assert wrong_key not in text and API_KEY not in text
    assert fake.requests_seen == 1
    assert sleep.delays == []


def test_connection_refused_is_retried_then_failed(
    make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    sender = make_sender(host=f"http://127.0.0.1:{closed_port()}", max_attempts=3)

    outcome = sender.send(an_email())

    assert outcome.status == "failed"
    assert outcome.attempts == 3
    assert len(sleep.delays) == 2
    assert outcome.error is not None and "not delivered" in outcome.error
    assert API_KEY not in outcome.error


# --- ambiguous outcomes: never resend -----------------------------------------------------


def test_read_timeout_is_unknown_and_not_resent(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    fake.slow_delay_s = 1.5
    fake.fail_next(1, "slow")

    outcome = make_sender(timeout_s=0.5).send(an_email())

    assert outcome.status == "unknown"
    assert outcome.attempts == 1
    assert outcome.provider_message_id is None
    assert fake.requests_seen == 1
    assert fake.received_keys() == {an_email().message_key: 1}
    assert sleep.delays == []


def test_connection_dropped_after_accept_is_unknown_and_not_resent(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    fake.fail_next(1, "drop_after_accept")

    outcome = make_sender().send(an_email())

    assert outcome.status == "unknown"
    assert outcome.attempts == 1
    assert fake.requests_seen == 1
    assert fake.received_keys() == {an_email().message_key: 1}
    assert sleep.delays == []


def test_connection_dropped_before_accept_is_still_unknown_not_failed(
    fake: FakeSendGrid, make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    # The client cannot tell this apart from drop_after_accept, so it must not claim "failed".
    fake.fail_next(1, "drop")

    outcome = make_sender().send(an_email())

    assert outcome.status == "unknown"
    assert fake.requests_seen == 1
    assert fake.messages == []
    assert sleep.delays == []


def test_random_retryable_faults_still_deliver_every_key_exactly_once(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    fake.set_failure_rate(0.4, ["429", "500", "503"], seed=1234)
    sender = make_sender(max_attempts=12)
    keys = [f"bo-{i}-notice-1" for i in range(25)]

    outcomes = [sender.send(an_email(k)) for k in keys]

    assert {o.status for o in outcomes} == {"sent"}
    assert fake.received_keys() == dict.fromkeys(keys, 1)
    assert fake.requests_seen > len(keys)  # faults really were injected


def test_concurrent_sends_share_one_sender_safely(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    sender = make_sender()
    keys = [f"bo-{i}-notice-1" for i in range(40)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda k: sender.send(an_email(k)), keys))

    assert all(o.status == "sent" for o in outcomes)
    assert fake.received_keys() == dict.fromkeys(keys, 1)
    assert len({o.provider_message_id for o in outcomes}) == len(keys)


# --- secrets ---------------------------------------------------------------------------------


def test_repr_hides_api_key(make_sender: SenderFactory) -> None:
    sender = make_sender()

    assert API_KEY not in repr(sender)
    assert API_KEY not in str(sender)
    assert "REDACTED" in repr(sender)


def test_client_debug_logging_never_contains_api_key(
    make_sender: SenderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="python_http_client.client")

    make_sender().send(an_email())

    assert "HEADERS" in caplog.text  # python_http_client really logged the headers
    assert API_KEY not in caplog.text
    assert "Bearer [REDACTED]" in caplog.text


def test_empty_api_key_is_rejected_instead_of_falling_back_to_environment() -> None:
    with pytest.raises(ValueError):
        SendGridSender(api_key="", host="http://127.0.0.1:1", from_email="a@example.com")


# --- the fake itself ---------------------------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    body = valid_body()
    del body[key]
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**valid_body(), "personalizations": []}, "personalizations"),
        (
            {**valid_body(), "personalizations": [{"to": [{"email": "a@example.org"}]}] * 1001},
            "personalizations",
        ),
        ({**valid_body(), "personalizations": [{"to": []}]}, "personalizations.0.to"),
        (
            {**valid_body(), "personalizations": [{"to": [{"email": "not-an-address"}]}]},
            "personalizations.0.to.0.email",
        ),
        (_without("from"), "from.email"),
        (_without("subject"), "subject"),
        (_without("content"), "content"),
        ({**valid_body(), "content": [{"type": "text/plain", "value": ""}]}, "content.0.value"),
        (
            {
                **valid_body(),
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ],
            },
            "content.1.type",
        ),
        (
            {**valid_body(), "mail_settings": {"sandbox_mode": {"enable": "true"}}},
            "mail_settings.sandbox_mode.enable",
        ),
    ],
)
def test_fake_rejects_invalid_payload_shapes_with_400(
    fake: FakeSendGrid, body: dict[str, Any], field: str
) -> None:
    status, _, raw = raw_post(fake.url, body)

    assert status == 400
    errors = json.loads(raw)["errors"]
    assert field in [e["field"] for e in errors]
    assert all(set(e) == {"message", "field", "help"} for e in errors)
    assert fake.messages == []


def test_fake_accepts_template_without_subject_or_content(fake: FakeSendGrid) -> None:
    body = {
        "personalizations": [{"to": [{"email": "a@example.org"}]}],
        "from": {"email": "shop@example.com"},
        "template_id": "d-0123456789abcdef0123456789abcdef",
    }

    status, headers, raw = raw_post(fake.url, body)

    assert status == 202
    assert raw == b""
    assert headers["X-Message-Id"] == fake.messages[0]["x_message_id"]


def test_fake_sandbox_answers_200_as_sendgrid_documents(fake: FakeSendGrid) -> None:
    status, _, _ = raw_post(
        fake.url, {**valid_body(), "mail_settings": {"sandbox_mode": {"enable": True}}}
    )

    assert status == 200
    assert fake.messages[0]["sandbox"] is True


def test_fake_429_carries_rate_limit_headers(fake: FakeSendGrid) -> None:
    fake.fail_next(1, "429")

    status, headers, raw = raw_post(fake.url, valid_body())

    assert status == 429
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Limit"]) > 0
    assert int(headers["X-RateLimit-Reset"]) > 0
    assert json.loads(raw)["errors"][0]["message"]


def test_fake_wrong_key_gets_401_error_json(fake: FakeSendGrid) -> None:
    status, _, raw = raw_post(fake.url, valid_body(), key="nope")

    assert status == 401
    assert json.loads(raw)["errors"][0]["field"] is None
    assert fake.messages == []


def test_fake_runs_as_standalone_process_and_prints_url(
    make_sender: SenderFactory, sleep: RecordingSleep
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backorders.devtools.sendgrid_server",
            *("--port", "0", "--key", API_KEY),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=10), "fake did not print its URL"
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")

        outcome = make_sender(host=url).send(an_email())

        assert outcome.status == "sent"
        assert outcome.provider_message_id
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


# --- batches -----------------------------------------------------------------------------------


def test_emails_with_different_bodies_go_one_request_each(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    emails = [
        an_email(
            f"k{i}",
            to_email=f"c{i}@example.org",
            subject=f"S{i}",
            text=f"text {i}",
            html=f"<p>{i}</p>",
        )
        for i in range(5)
    ]

    outcomes = make_sender().send_batch(emails)

    assert fake.requests_seen == 5
    assert all(len(m["personalizations"]) == 1 for m in fake.messages)
    assert [o.status for o in outcomes] == ["sent"] * 5
    assert len({o.provider_message_id for o in outcomes}) == 5
    got = {d["message_key"]: d for d in fake.deliveries()}
    assert got["k3"]["subject"] == "S3" and got["k3"]["text"] == "text 3"
    assert got["k3"]["html"] == "<p>3</p>" and got["k3"]["to"] == ["c3@example.org"]


def test_a_batch_refused_with_400_is_split_so_the_bad_email_fails_alone(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    good = [an_email(f"k{i}", to_email=f"c{i}@example.org") for i in range(4)]
    carries = tuple(f"m{i:031d}" for i in range(400))  # custom_args over 10,000 bytes
    bad = an_email("k-bad", to_email="bad@example.org", carries=carries)

    outcomes = make_sender().send_batch([*good[:2], bad, *good[2:]])

    assert [o.status for o in outcomes] == ["sent", "sent", "failed", "sent", "sent"]
    assert outcomes[2].error is not None and "HTTP 400" in outcomes[2].error
    assert not outcomes[2].retryable
    assert fake.received_keys() == {f"k{i}": 1 for i in range(4)}


def test_combined_email_lists_the_messages_it_carries(
    fake: FakeSendGrid, make_sender: SenderFactory
) -> None:
    email = an_email("e1", carries=("m1", "m2"))

    make_sender().send_batch([email])

    assert fake.messages[0]["custom_args"] == {"message_key": "e1", "message_keys": "m1,m2"}
    assert fake.received_keys() == {"m1": 1, "m2": 1}
