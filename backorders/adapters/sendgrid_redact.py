"""Keeping the SendGrid API key out of logs and error texts.

``python_http_client`` logs the request headers, including ``Authorization: Bearer
<key>``, at DEBUG level on logger ``python_http_client.client``: a redacting filter is
installed on that logger when this module is imported.
"""

from __future__ import annotations

import json
import logging
import re

REDACTED = "[REDACTED]"
_BEARER_RE = re.compile(r"(Bearer\s+)[^\s'\",}]+", re.IGNORECASE)
# SendGrid keys look like "SG.<22 chars>.<43 chars>"; scrub anything of that shape too.
_SG_KEY_RE = re.compile(r"SG\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")
_MAX_ERROR_LEN = 500


class _RedactAuthorizationFilter(logging.Filter):
    """Logging filter that masks bearer tokens in python_http_client debug records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record so no bearer token or SendGrid key survives; always keep it."""
        try:
            message = record.getMessage()
        except Exception:  # malformed record: leave it to the logging machinery
            return True
        scrubbed = _SG_KEY_RE.sub(REDACTED, _BEARER_RE.sub(r"\1" + REDACTED, message))
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        return True


def _install_log_redaction() -> None:
    """Attach the redacting filter to python_http_client's logger exactly once."""
    logger = logging.getLogger("python_http_client.client")
    if not any(isinstance(f, _RedactAuthorizationFilter) for f in logger.filters):
        logger.addFilter(_RedactAuthorizationFilter())


_install_log_redaction()


def scrub(text: str, api_key: str) -> str:
    """Remove the API key (and anything key- or bearer-shaped) from ``text``."""
    text = text.replace(api_key, REDACTED)
    text = _BEARER_RE.sub(r"\1" + REDACTED, text)
    return _SG_KEY_RE.sub(REDACTED, text)


def sendgrid_error_text(body: bytes | str | None) -> str:
    """Extract SendGrid's ``errors[].message`` (and field) from an error body."""
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw.strip()[:200]
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        parts: list[str] = []
        for item in parsed["errors"]:
            if not isinstance(item, dict):
                continue
            message = str(item.get("message") or "").strip()
            field = item.get("field")
            parts.append(f"{message} (field: {field})" if field else message)
        return "; ".join(p for p in parts if p)
    return raw.strip()[:200]
