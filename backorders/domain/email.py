"""Pure e-mail domain types: outgoing messages, send outcomes and input hygiene helpers.

Stdlib only, no I/O. Adapters (e.g. ``backorders.adapters.sendgrid_sender``) turn an
``OutgoingEmail`` into a provider request and report back a ``SendOutcome``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "OutgoingEmail",
    "SendOutcome",
    "SendStatus",
    "is_deliverable_address",
    "safe_header_value",
]


@dataclass(frozen=True)
class OutgoingEmail:
    """One e-mail to one recipient, identified by a deterministic ``message_key``."""

    message_key: str  # deterministic, unique per message; sent as custom_args["message_key"]
    to_email: str
    to_name: str | None
    subject: str
    text: str
    html: str
    categories: tuple[str, ...] = ()
    # The outbox messages this email carries when it combines several (one customer,
    # several orders); sent as custom_args["message_keys"], comma-separated.
    carries: tuple[str, ...] = ()

    def custom_args(self) -> dict[str, str]:
        """The custom_args that identify this email and the messages it carries."""
        args = {"message_key": self.message_key}
        if self.carries and self.carries != (self.message_key,):
            args["message_keys"] = ",".join(self.carries)
        return args


SendStatus = Literal["sent", "failed", "unknown"]
"""``sent``: provider answered 2xx.
``failed``: permanent error, or retries exhausted; the request is known NOT accepted.
``unknown``: the request may have reached the provider but no answer came back
(read timeout, connection dropped after sending). Resending blindly could duplicate it.
"""


@dataclass(frozen=True)
class SendOutcome:
    """Result of trying to hand one ``OutgoingEmail`` to the provider."""

    message_key: str
    status: SendStatus
    provider_message_id: str | None
    error: str | None  # short human reason; never contains credentials
    attempts: int  # HTTP requests made (0 if rejected before any request)
    # For "failed": True when SendGrid surely did not accept it and a later pass may try
    # again (429/5xx/not connected until the attempts ran out); False for a 4xx.
    retryable: bool = False


# Characters that never belong in an address we are willing to send to: they either
# split address lists (",", ";"), start display-name/route syntax ("<", ">", ":", "\""),
# or are comment/quoting syntax we do not support.
_FORBIDDEN_ADDRESS_CHARS = frozenset(',;<>:"()[]\\')
_MAX_ADDRESS_LEN = 254  # RFC 5321 path limit minus the angle brackets
_MAX_LOCAL_LEN = 64
_MAX_DOMAIN_LEN = 253


def _is_control(ch: str) -> bool:
    """Return True for control, format, surrogate and line/paragraph separator chars."""
    return unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}


def is_deliverable_address(email: str) -> bool:
    """Return True if ``email`` is a plausible single mailbox address (pragmatic syntax check)."""
    if not email or len(email) > _MAX_ADDRESS_LEN:
        return False
    for ch in email:
        if ch.isspace() or _is_control(ch) or ch in _FORBIDDEN_ADDRESS_CHARS:
            return False
    if email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not local or len(local) > _MAX_LOCAL_LEN:
        return False
    if not domain or len(domain) > _MAX_DOMAIN_LEN or "." not in domain:
        return False
    labels = domain.split(".")
    if any(not label or label.startswith("-") or label.endswith("-") for label in labels):
        return False
    return len(labels[-1]) >= 2


_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def safe_header_value(s: str) -> str:
    """Return ``s`` with line breaks turned into spaces and other control chars removed."""
    out: list[str] = []
    for ch in s:
        if ch in _LINE_BREAKS or ch == "\t":
            # A break between two words must not glue them together.
            if out and out[-1] != " ":
                out.append(" ")
        elif _is_control(ch):
            continue
        else:
            out.append(ch)
    return "".join(out).strip()
