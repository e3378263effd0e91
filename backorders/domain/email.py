"""Pure e-mail domain types: outgoing messages, send outcomes and input hygiene helpers.

Stdlib only, no I/O. Adapters (e.g. ``backorders.adapters.sendgrid_sender``) turn an
``OutgoingEmail`` into a provider request and report back a ``SendOutcome``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "COMBINED_TEMPLATE",
    "MAX_TEMPLATE_DATA_BYTES",
    "TEMPLATE_SLOTS",
    "ActivityLookup",
    "OutgoingEmail",
    "Resolution",
    "SendOutcome",
    "SendStatus",
    "is_deliverable_address",
    "is_dynamic_template_id",
    "resolve_unknown",
    "safe_header_value",
    "template_data_bytes",
    "validate_template_ids",
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
    # A SendGrid dynamic template (d-...) and its per-recipient handlebars data: when set,
    # the request carries template_id + dynamic_template_data instead of subject/content
    # (subject, text and html stay here as the rendered fallback and for the record).
    template_id: str | None = None
    template_data: Mapping[str, object] | None = field(default=None, hash=False, compare=False)

    def custom_args(self) -> dict[str, str]:
        """The custom_args that identify this email and the messages it carries."""
        args = {"message_key": self.message_key}
        if self.carries and self.carries != (self.message_key,):
            args["message_keys"] = ",".join(self.carries)
        return args


SendStatus = Literal["sent", "failed", "unknown", "not_sent"]
"""``sent``: provider answered 2xx.
``failed``: permanent error, or retries exhausted; the request is known NOT accepted.
``unknown``: the request may have reached the provider but no answer came back
(read timeout, connection dropped after sending). Resending blindly could duplicate it.
``not_sent``: nothing was accepted and the email is not to blame: a stop was requested
before (another) request went out, or sending stopped (the API key was refused); the
email stays pending for the next pass.
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


# --- SendGrid dynamic templates -------------------------------------------------------------

# The message kinds an id can be configured for, plus one for an email that combines
# several orders of one customer.
COMBINED_TEMPLATE = "combined"
TEMPLATE_SLOTS: tuple[str, ...] = (
    "backorder_confirmed",
    "promise_changed",
    "delay_apology",
    "ready_to_ship",
    "cancellation_offer",
    COMBINED_TEMPLATE,
)
# SendGrid's dynamic template ids are "d-" and 32 lowercase hex digits.
_DYNAMIC_TEMPLATE_ID = re.compile(r"d-[0-9a-f]{32}")
# SendGrid documents the handlebars data of one personalization as capped at 10,000 bytes
# (as for substitutions); measured as the JSON the client sends.
MAX_TEMPLATE_DATA_BYTES = 10_000


def is_dynamic_template_id(value: str) -> bool:
    """True for a SendGrid dynamic template id: ``d-`` followed by 32 lowercase hex digits."""
    return _DYNAMIC_TEMPLATE_ID.fullmatch(value) is not None


def validate_template_ids(ids: Mapping[str, str]) -> dict[str, str]:
    """The mapping slot -> template id, or ValueError naming every bad slot or id."""
    problems: list[str] = []
    for slot, value in ids.items():
        if slot not in TEMPLATE_SLOTS:
            problems.append(f"{slot!r} is not a message kind (one of {', '.join(TEMPLATE_SLOTS)})")
        elif not isinstance(value, str) or not is_dynamic_template_id(value):
            problems.append(
                f"{slot}: {value!r} is not a SendGrid dynamic template id "
                "('d-' followed by 32 lowercase hex digits, as shown in SendGrid's "
                "Dynamic Templates page)"
            )
    if problems:
        raise ValueError("sendgrid_template_ids: " + "; ".join(problems))
    return dict(ids)


def template_data_bytes(data: Mapping[str, object]) -> int:
    """Size of ``data`` as the client puts it on the wire (json.dumps, ASCII-escaped)."""
    return len(json.dumps(data).encode("utf-8"))


# --- unknown outcomes, resolved through SendGrid's Email Activity ---------------------------


@dataclass(frozen=True)
class ActivityLookup:
    """What SendGrid's Email Activity feed said about emails whose outcome was unknown.

    ``found`` maps an email key to the per-message id SendGrid lists for it (its
    ``msg_id``, which starts with the request's X-Message-Id). ``not_found`` holds the keys
    the feed was asked about and does not list. Keys in neither could not be looked up
    (``error`` says why: the API is unavailable to the key, failing, or out of budget).
    """

    found: Mapping[str, str] = field(default_factory=dict)
    not_found: frozenset[str] = frozenset()
    error: str | None = None


Resolution = Literal["sent", "requeue", "wait", "unresolved"]
"""``sent``: SendGrid has it (record its msg_id). ``requeue``: not in the feed although the
feed has had ``settle_s`` to catch up since the attempt: SendGrid never accepted it, send
it again. ``wait``: not in the feed yet, too soon to tell. ``unresolved``: not looked up.
"""


def resolve_unknown(
    email_key: str,
    lookup: ActivityLookup,
    *,
    unknown_since: datetime,
    looked_up_at: datetime,
    settle_s: float,
) -> Resolution:
    """Decide an unknown email's fate from an activity lookup started at ``looked_up_at``.

    ``unknown_since`` is when the unknown outcome was recorded: no request for the email
    can have left after it (the process that sent it had stopped, or had given up on it),
    so "not found" is only proof once the feed has had ``settle_s`` seconds since then.
    """
    if email_key in lookup.found:
        return "sent"
    if email_key in lookup.not_found:
        waited = (looked_up_at - unknown_since).total_seconds()
        return "requeue" if waited >= settle_s else "wait"
    return "unresolved"
