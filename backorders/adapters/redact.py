"""Keeping vendors' API keys out of logs and error texts: one helper for SendGrid and Stripe.

What is scrubbed: the sender's own key, ``Bearer <token>``, anything shaped like a SendGrid
key (``SG.<id>.<secret>``) or a Stripe secret or restricted key (``sk_test_…``,
``rk_live_…``), whichever vendor's text it appears in. Where the vendors' packages log:
``python_http_client`` logs request headers, ``Authorization: Bearer <key>`` included,
at DEBUG on ``python_http_client.client``; ``stripe`` logs requests and response bodies
on ``stripe`` (no headers). A redacting filter is installed on both loggers when this
module is imported. (``STRIPE_LOG=debug`` also prints to stderr, outside logging: the
project never sets it.)
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"
_BEARER_RE = re.compile(r"(Bearer\s+)[^\s'\",}]+", re.IGNORECASE)
# SendGrid keys look like "SG.<22 chars>.<43 chars>"; Stripe's "sk_live_<…>" / "rk_test_<…>"
_KEY_RES = (
    re.compile(r"SG\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9_]+"),
)
VENDOR_LOGGERS = ("python_http_client.client", "stripe")


def scrub(text: str, api_key: str = "") -> str:
    """``text`` without ``api_key`` and without anything bearer- or key-shaped."""
    if api_key:
        text = text.replace(api_key, REDACTED)
    text = _BEARER_RE.sub(r"\1" + REDACTED, text)
    for pattern in _KEY_RES:
        text = pattern.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter that rewrites a record so no bearer token or API key survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the formatted message in place; always keep the record."""
        try:
            message = record.getMessage()
        except Exception:  # malformed record: leave it to the logging machinery
            return True
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        return True


def install_log_redaction(names: tuple[str, ...] = VENDOR_LOGGERS) -> None:
    """Attach the redacting filter to these loggers, once each."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


install_log_redaction()
