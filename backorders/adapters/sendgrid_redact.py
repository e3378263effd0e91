"""SendGrid's error texts, and the redaction the SendGrid sender uses (backorders.adapters.redact).

``REDACTED`` and ``scrub`` are re-exported from the shared helper, whose import installs
the redacting log filter on ``python_http_client.client`` (and on ``stripe``).
"""

from __future__ import annotations

import json

from backorders.adapters.redact import REDACTED, scrub

__all__ = ["REDACTED", "scrub", "sendgrid_error_text"]


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
