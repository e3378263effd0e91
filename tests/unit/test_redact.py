"""One redaction helper for both vendors: keys out of error texts and out of their loggers."""

from __future__ import annotations

import logging

import pytest
import stripe
from stripe import _util as stripe_util

from backorders.adapters import redact, sendgrid_redact, stripe_sender
from backorders.adapters.redact import REDACTED, scrub

pytestmark = pytest.mark.unit
STRIPE_KEY = "sk_live_51HxAbCdEfGhIjKlMnOpQrStUv"
RESTRICTED_KEY = "rk_test_51HxZyXwVuTsRqPoNm"
SENDGRID_KEY = "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789abcdefghijklmnopqrstuvwxyzABC"
TOKEN = "opaque-token-0123456789"


def _leaks(text: str) -> list[str]:
    return [k for k in (STRIPE_KEY, RESTRICTED_KEY, SENDGRID_KEY, TOKEN) if k in text]


def test_stripe_and_sendgrid_keys_in_an_exception_text_are_redacted() -> None:
    exc = RuntimeError(
        f"Invalid API Key provided: {STRIPE_KEY}; also {RESTRICTED_KEY}, "
        f"sendgrid said no to {SENDGRID_KEY} (headers {{'Authorization': 'Bearer {TOKEN}'}})"
    )
    for text in (
        scrub(str(exc)),
        sendgrid_redact.scrub(str(exc), SENDGRID_KEY),  # what each sender calls
        stripe_sender.scrub(str(exc), STRIPE_KEY),
    ):
        assert _leaks(text) == [] and text.count(REDACTED) == 4
        assert "Bearer [REDACTED]" in text


def test_the_senders_own_key_is_redacted_whatever_its_shape() -> None:
    assert scrub("key=not-shaped-like-a-key!", "not-shaped-like-a-key!") == f"key={REDACTED}"
    assert scrub("nothing secret here", "") == "nothing secret here"


def test_a_log_record_of_the_stripe_package_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe")

    stripe_util.log_debug("API response body", body=f'{{"error": "bad key {STRIPE_KEY}"}}')
    stripe_util.log_info("Stripe API error received", error_message=f"Bearer {TOKEN}")

    assert "API response body" in caplog.text  # the package really logged it
    assert _leaks(caplog.text) == [] and REDACTED in caplog.text
    assert stripe_util.logger is logging.getLogger("stripe") and stripe.VERSION


def test_a_log_record_of_python_http_client_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="python_http_client.client")
    logger = logging.getLogger("python_http_client.client")

    logger.debug("HEADERS: %s", {"Authorization": f"Bearer {SENDGRID_KEY}"})
    logger.debug("BODY: %s", f"a stray {STRIPE_KEY}")

    assert "HEADERS" in caplog.text and _leaks(caplog.text) == []


def test_the_filter_is_installed_once_per_logger() -> None:
    redact.install_log_redaction()
    redact.install_log_redaction()
    for name in redact.VENDOR_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, redact.RedactingFilter) for f in filters) == 1
