"""Send one ``OutgoingEmail`` through SendGrid's v3 Mail Send API with safe retries.

Facts about the official client this adapter relies on (sendgrid 6.12.5 /
python_http_client 3.3.7, checked in their source):

* ``SendGridAPIClient`` has no ``timeout`` argument and no retries. The timeout lives on
  the underlying ``python_http_client.Client`` (``client.client.timeout``, copied to each
  chained sub-client) or can be passed per call: ``client.client.mail.send.post(...,
  timeout=...)``. It is used as ``timeout or self.timeout``, so ``0`` means *no timeout*.
  The value is urllib's per-socket-operation timeout (connect, each read), not a deadline.
* Every HTTP status >= 400 raises a ``python_http_client.exceptions.HTTPError`` subclass
  carrying ``status_code``, ``body`` (bytes) and ``headers``.
* Transport errors come straight from ``urllib``: anything that fails while connecting or
  writing the request is wrapped in ``urllib.error.URLError`` (the request never reached
  the server completely); anything that fails while waiting for / reading the answer
  (``TimeoutError``, ``RemoteDisconnected``, ``ConnectionResetError``, ``IncompleteRead``)
  is raised raw. This adapter maps the former to "retry" and the latter to ``unknown``.
* ``python_http_client`` logs the request headers, including ``Authorization: Bearer
  <key>``, at DEBUG level on logger ``python_http_client.client``. A redacting filter is
  installed on that logger when this module is imported.
* An empty/None ``api_key`` silently falls back to ``$SENDGRID_API_KEY``; this adapter
  refuses an empty key instead.
* Query parameters are encoded with ``urllib.parse.urlencode`` (spaces as ``+``), which is
  how SendGrid's own examples call ``GET /v3/messages``.

SendGrid's Email Activity API (``GET /v3/messages?query=...&limit=...``, checked in
SendGrid's docs and OpenAPI spec): needs the paid "additional email activity history"
add-on and a key with Email Activity access (without them: 400 "authorization required",
401 or 403 "access forbidden"); 6 requests a minute (429 beyond); ``limit`` 1..1000;
answers ``{"messages": [{"msg_id", "to_email", "status", ...}]}`` without the custom
args, so a lookup by ``unique_args['message_key'] IN (...)`` is matched back to keys by
recipient (``lookup_activity``).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import time
import urllib.error
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient

from backorders.domain.email import (
    MAX_TEMPLATE_DATA_BYTES,
    ActivityLookup,
    OutgoingEmail,
    SendOutcome,
    SendStatus,
    is_deliverable_address,
    is_dynamic_template_id,
    safe_header_value,
    template_data_bytes,
)

__all__ = [
    "MAX_PERSONALIZATIONS",
    "SendGridSender",
    "activity_query",
    "build_batch_payload",
    "build_mail_payload",
    "fits_substitutions",
]

_log = logging.getLogger(__name__)

_REDACTED = "[REDACTED]"
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
        scrubbed = _SG_KEY_RE.sub(_REDACTED, _BEARER_RE.sub(r"\1" + _REDACTED, message))
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


def build_mail_payload(
    email: OutgoingEmail,
    *,
    from_email: str,
    from_name: str | None = None,
    sandbox: bool = False,
) -> dict[str, Any]:
    """Build the v3 Mail Send JSON body for one e-mail (one personalization)."""
    to = _recipient(email)
    sender: dict[str, str] = {"email": from_email}
    if from_name:
        name = safe_header_value(from_name)
        if name:
            sender["name"] = name
    if email.template_id is not None:
        # A dynamic template brings its own subject and content: only the data travels.
        payload: dict[str, Any] = {
            "personalizations": [
                {"to": [to], "dynamic_template_data": dict(email.template_data or {})}
            ],
            "from": sender,
            "template_id": email.template_id,
            "custom_args": email.custom_args(),
        }
    else:
        # SendGrid rejects empty content values; text/plain must come before text/html.
        content = [
            {"type": mime, "value": value}
            for mime, value in (("text/plain", email.text), ("text/html", email.html))
            if value
        ]
        payload = {
            "personalizations": [{"to": [to]}],
            "from": sender,
            "subject": safe_header_value(email.subject),
            "content": content,
            "custom_args": email.custom_args(),
        }
    categories = list(dict.fromkeys(c for c in map(safe_header_value, email.categories) if c))
    if categories:
        payload["categories"] = categories
    if sandbox:
        payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return payload


MAX_PERSONALIZATIONS = 1000  # SendGrid's limit per request
MAX_SUBSTITUTION_BYTES = 10_000  # SendGrid's limit per personalization
TEXT_TAG = "%bo_text%"
HTML_TAG = "%bo_html%"
_TAG_PREFIX = "%bo_"


def fits_substitutions(email: OutgoingEmail) -> bool:
    """True when the email can share a request with others (its group's content block).

    A template email always can (its data is checked by ``_precheck``); a rendered one
    when its bodies fit as substitutions of the shared content block.
    """
    if email.template_id is not None:
        return True
    if not email.text or not email.html:
        return False
    if _TAG_PREFIX in email.text or _TAG_PREFIX in email.html:
        return False  # a tag inside a value could be substituted again
    size = sum(len(s.encode("utf-8")) for s in (TEXT_TAG, email.text, HTML_TAG, email.html))
    return size <= MAX_SUBSTITUTION_BYTES


def _recipient(email: OutgoingEmail) -> dict[str, str]:
    to: dict[str, str] = {"email": email.to_email}
    if email.to_name:
        name = safe_header_value(email.to_name)
        if name:
            to["name"] = name
    return to


def build_batch_payload(
    emails: Sequence[OutgoingEmail],
    *,
    from_email: str,
    from_name: str | None = None,
    sandbox: bool = False,
) -> dict[str, Any]:
    """One v3 Mail Send body for many emails: one personalization each.

    Each personalization carries its own recipient and ``custom_args.message_key``. Rendered
    emails carry their subject and their bodies as substitutions of the shared content
    block; template emails (all with the same ``template_id``, a top-level field) carry
    their ``dynamic_template_data``. The emails must share their categories (a top-level
    field) and fit ``fits_substitutions``.
    """
    if not 1 <= len(emails) <= MAX_PERSONALIZATIONS:
        raise ValueError(f"a request carries 1 to {MAX_PERSONALIZATIONS} personalizations")
    template_ids = {e.template_id for e in emails}
    if len(template_ids) != 1:
        raise ValueError("the emails of one request must share their template (or have none)")
    template_id = template_ids.pop()
    sender: dict[str, str] = {"email": from_email}
    if from_name:
        name = safe_header_value(from_name)
        if name:
            sender["name"] = name
    if template_id is not None:
        payload: dict[str, Any] = {
            "personalizations": [
                {
                    "to": [_recipient(e)],
                    "custom_args": e.custom_args(),
                    "dynamic_template_data": dict(e.template_data or {}),
                }
                for e in emails
            ],
            "from": sender,
            "template_id": template_id,
        }
    else:
        payload = {
            "personalizations": [
                {
                    "to": [_recipient(e)],
                    "subject": safe_header_value(e.subject),
                    "custom_args": e.custom_args(),
                    "substitutions": {TEXT_TAG: e.text, HTML_TAG: e.html},
                }
                for e in emails
            ],
            "from": sender,
            "content": [
                {"type": "text/plain", "value": TEXT_TAG},
                {"type": "text/html", "value": HTML_TAG},
            ],
        }
    categories = list(dict.fromkeys(c for c in map(safe_header_value, emails[0].categories) if c))
    if categories:
        payload["categories"] = categories
    if sandbox:
        payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return payload


def _by_categories(emails: Sequence[OutgoingEmail]) -> list[list[OutgoingEmail]]:
    """Emails that can share a request: same categories and same template (or none)."""
    groups: dict[tuple[tuple[str, ...], str | None], list[OutgoingEmail]] = {}
    for e in emails:
        groups.setdefault((e.categories, e.template_id), []).append(e)
    return list(groups.values())


def _chunks(items: Sequence[OutgoingEmail], size: int) -> Iterator[Sequence[OutgoingEmail]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


ACTIVITY_LIMIT = 1000  # most messages one Email Activity request returns (its `limit`)
ACTIVITY_ARG = "message_key"  # the custom arg every email carries, searched as unique_args


def activity_query(email_keys: Sequence[str]) -> str:
    """The Email Activity query for the messages whose custom arg ``message_key`` is one of these.

    SendGrid's query language: ``unique_args['name']`` addresses a custom arg, ``IN`` takes a
    parenthesised list of double-quoted strings, ``\\`` escapes.
    """

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return f"unique_args['{ACTIVITY_ARG}'] IN ({','.join(quoted(k) for k in email_keys)})"


def _spread_by_recipient(
    emails: Sequence[tuple[str, str]], size: int
) -> list[list[tuple[str, str]]]:
    """Chunks of at most ``size`` (key, address) with no address twice in a chunk.

    The feed answers with recipients, not custom args: within one query a recipient must
    name one key, so that a listed message can be matched back to its email.
    """
    chunks: list[list[tuple[str, str]]] = []
    seen: list[set[str]] = []
    for key, address in sorted(emails):
        low = address.lower()
        for chunk, addresses in zip(chunks, seen, strict=True):
            if len(chunk) < size and low not in addresses:
                chunk.append((key, address))
                addresses.add(low)
                break
        else:
            chunks.append([(key, address)])
            seen.append({low})
    return chunks


def _sendgrid_error_text(body: bytes | str | None) -> str:
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


class SendGridSender:
    """Deliver ``OutgoingEmail`` objects via SendGrid, retrying only when provably safe."""

    def __init__(
        self,
        *,
        api_key: str,
        host: str,
        from_email: str,
        from_name: str | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        sandbox: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """Configure the sender; nothing is sent and no connection is opened here."""
        if not api_key or any(c in api_key for c in "\r\n"):
            raise ValueError("api_key must be a non-empty single-line string")
        if not host:
            raise ValueError("host must be non-empty")
        if not is_deliverable_address(from_email):
            raise ValueError("from_email is not a deliverable address")
        if not timeout_s > 0:  # 0 would mean "no timeout" in python_http_client
            raise ValueError("timeout_s must be > 0")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if base_backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff values must be >= 0")
        self._api_key = api_key
        self._host = host.rstrip("/")
        self._from_email = from_email
        self._from_name = from_name
        self._timeout_s = float(timeout_s)
        self._max_attempts = max_attempts
        self._base_backoff_s = float(base_backoff_s)
        self._max_backoff_s = float(max_backoff_s)
        self._sandbox = sandbox
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._client = SendGridAPIClient(api_key=api_key, host=self._host)
        # No timeout by default in the client: set it on the base client (inherited by the
        # chained sub-clients) and also pass it per call in _post().
        self._client.client.timeout = self._timeout_s

    def __repr__(self) -> str:
        """Describe the sender without revealing the API key."""
        return (
            f"SendGridSender(host={self._host!r}, from_email={self._from_email!r}, "
            f"sandbox={self._sandbox!r}, timeout_s={self._timeout_s!r}, "
            f"max_attempts={self._max_attempts!r}, api_key='{_REDACTED}')"
        )

    def send(self, email: OutgoingEmail) -> SendOutcome:
        """Send ``email`` once; retry 429/5xx/not-delivered errors; never resend on doubt."""
        problem = self._precheck(email)
        if problem is not None:
            return self._outcome(email, "failed", None, problem, 0)
        payload = build_mail_payload(
            email, from_email=self._from_email, from_name=self._from_name, sandbox=self._sandbox
        )
        status, message_id, error, attempts = self._deliver(payload, email.message_key)
        return self._outcome(email, status, message_id, error, attempts)

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """Send many emails in as few requests as possible (one personalization each).

        SendGrid accepts or rejects a request whole, so every email of one request shares
        its outcome. Bodies travel as per-personalization substitutions of one shared
        content block; an email too big for that (SendGrid caps substitutions at 10,000
        bytes per personalization) goes in a request of its own. A 400 on a request of
        several emails is split in halves and retried (a 400 means nothing was accepted),
        so one bad email cannot fail its neighbours.
        """
        outcomes: dict[str, SendOutcome] = {}
        batchable: list[OutgoingEmail] = []
        for email in emails:
            problem = self._precheck(email)
            if problem is not None:
                outcomes[email.message_key] = self._outcome(email, "failed", None, problem, 0)
            elif fits_substitutions(email):
                batchable.append(email)
            else:
                outcomes[email.message_key] = self.send(email)
        for group in _by_categories(batchable):
            for chunk in _chunks(group, MAX_PERSONALIZATIONS):
                for outcome in self._send_chunk(chunk):
                    outcomes[outcome.message_key] = outcome
        return [outcomes[e.message_key] for e in emails]

    def _send_chunk(self, chunk: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """One request for ``chunk``; bisect on a 400 so a bad email fails alone."""
        if len(chunk) == 1:
            return [self.send(chunk[0])]
        payload = build_batch_payload(
            chunk, from_email=self._from_email, from_name=self._from_name, sandbox=self._sandbox
        )
        label = f"{chunk[0].message_key}..(+{len(chunk) - 1})"
        status, message_id, error, attempts = self._deliver(payload, label)
        if status == "failed" and error is not None and error.startswith("HTTP 400"):
            half = len(chunk) // 2
            return self._send_chunk(chunk[:half]) + self._send_chunk(chunk[half:])
        return [self._outcome(e, status, message_id, error, attempts) for e in chunk]

    def _deliver(
        self, payload: dict[str, Any], label: str
    ) -> tuple[SendStatus, str | None, str | None, int]:
        """POST one payload with retries; (status, X-Message-Id, error, requests made)."""
        last_error = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._post(payload)
            except SendGridHTTPError as exc:
                status = int(exc.status_code)
                detail = _sendgrid_error_text(getattr(exc, "body", None))
                last_error = f"HTTP {status}" + (f": {detail}" if detail else "")
                if status != 429 and not 500 <= status <= 599:
                    return "failed", None, last_error, attempt
                delay = self._retry_delay(attempt, status, getattr(exc, "headers", None))
            except urllib.error.URLError as exc:
                # Raised by urllib only while connecting/writing: the request was not
                # (completely) delivered, so retrying cannot create a duplicate.
                last_error = f"request not delivered: {exc.reason}"
                delay = self._retry_delay(attempt, None, None)
            except (OSError, http.client.HTTPException) as exc:
                # Read timeout / connection dropped after the request was written.
                error = (
                    f"no response after sending ({type(exc).__name__}: {exc}); "
                    "SendGrid may or may not have accepted it"
                )
                return "unknown", None, error, attempt
            else:
                message_id = response.headers.get("X-Message-Id") if response.headers else None
                return "sent", message_id, None, attempt
            if attempt < self._max_attempts:
                _log.info(
                    "sendgrid retry message_key=%s attempt=%d delay=%.3fs error=%s",
                    label,
                    attempt,
                    delay,
                    self._scrub(last_error),
                )
                self._sleep(delay)
        return (
            "failed",
            None,
            f"gave up after {self._max_attempts} attempts: {last_error}",
            (self._max_attempts),
        )

    def lookup_activity(
        self,
        emails: Sequence[tuple[str, str]],
        *,
        keys_per_query: int = 50,
        max_queries: int = 20,
    ) -> ActivityLookup:
        """Ask SendGrid's Email Activity which of these (email key, recipient) it has.

        One ``GET /v3/messages`` per chunk of ``keys_per_query`` keys (an ``IN`` query on the
        ``message_key`` custom arg), at most ``max_queries`` requests (the API allows 6 a
        minute; 429 is waited out as for sends). The answer lists recipients, not custom
        args, so each chunk holds a recipient once and a listed message is matched back by
        its ``to_email``. A key counts as not found only when its chunk's answer was whole
        (fewer than ``limit`` messages, every one matched); anything doubtful leaves the
        key unresolved. Never raises for HTTP or transport trouble: ``error`` says it.
        """
        found: dict[str, str] = {}
        not_found: set[str] = set()
        error: str | None = None
        for n, chunk in enumerate(_spread_by_recipient(emails, max(1, keys_per_query))):
            if n >= max_queries:
                error = (
                    f"stopped after {max_queries} Email Activity requests (SendGrid allows 6 "
                    "a minute); the rest is looked up by the next send pass"
                )
                break
            messages, problem = self._activity_query(activity_query([k for k, _ in chunk]))
            if messages is None:
                error = problem
                break
            by_recipient: dict[str, list[str]] = {}
            for m in messages:
                by_recipient.setdefault(str(m.get("to_email") or "").lower(), []).append(
                    str(m.get("msg_id") or "")
                )
            addresses = {address.lower() for _, address in chunk}
            whole = len(messages) < ACTIVITY_LIMIT and set(by_recipient) <= addresses
            for key, address in chunk:
                ids = by_recipient.get(address.lower())
                if ids:
                    found[key] = sorted(ids)[0]
                elif whole:
                    not_found.add(key)
            if not whole:
                error = "an Email Activity answer could not be matched to our emails in full"
        return ActivityLookup(
            found, frozenset(not_found), None if error is None else self._scrub(error)
        )

    def _activity_query(self, query: str) -> tuple[list[dict[str, Any]] | None, str | None]:
        """One Email Activity request with retries: (messages, None) or (None, why not)."""
        last_error = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client.client.messages.get(
                    query_params={"query": query, "limit": ACTIVITY_LIMIT},
                    timeout=self._timeout_s,
                )
            except SendGridHTTPError as exc:
                status = int(exc.status_code)
                detail = _sendgrid_error_text(getattr(exc, "body", None))
                last_error = f"HTTP {status}" + (f": {detail}" if detail else "")
                no_access = status in (401, 403, 404) or (
                    status == 400 and "authoriz" in detail.lower()
                )
                if no_access:
                    return None, (
                        f"Email Activity API not available to this key ({last_error}); it "
                        "needs SendGrid's 'additional email activity history' add-on and an "
                        "API key with Email Activity access"
                    )
                if status != 429 and not 500 <= status <= 599:
                    return None, f"Email Activity lookup refused ({last_error})"
                delay = self._retry_delay(attempt, status, getattr(exc, "headers", None))
            except (OSError, http.client.HTTPException) as exc:  # a GET is safe to repeat
                last_error = f"{type(exc).__name__}: {exc}"
                delay = self._retry_delay(attempt, None, None)
            else:
                try:
                    body = json.loads(response.body or b"{}")
                    messages = body["messages"]
                    if not isinstance(messages, list) or not all(
                        isinstance(m, dict) for m in messages
                    ):
                        raise TypeError("messages is not a list of objects")
                except (ValueError, KeyError, TypeError) as exc:
                    return None, f"Email Activity answer not understood ({exc})"
                return messages, None
            if attempt < self._max_attempts:
                _log.info(
                    "sendgrid activity retry attempt=%d delay=%.3fs error=%s",
                    attempt,
                    delay,
                    self._scrub(last_error),
                )
                self._sleep(delay)
        return (
            None,
            f"Email Activity lookup gave up after {self._max_attempts} attempts: {last_error}",
        )

    def _post(self, payload: dict[str, Any]) -> Any:
        """POST /v3/mail/send through the official client with an explicit timeout."""
        return self._client.client.mail.send.post(request_body=payload, timeout=self._timeout_s)

    def _precheck(self, email: OutgoingEmail) -> str | None:
        """Return a reason if ``email`` can never be accepted, else None."""
        if not email.message_key:
            return "empty message_key"
        if not is_deliverable_address(email.to_email):
            return "undeliverable recipient address"
        if not safe_header_value(email.subject):
            return "empty subject"
        if email.template_id is not None:
            if not is_dynamic_template_id(email.template_id):
                return f"not a SendGrid dynamic template id: {email.template_id!r}"
            size = template_data_bytes(email.template_data or {})
            if size > MAX_TEMPLATE_DATA_BYTES:
                return f"dynamic_template_data is {size} bytes (SendGrid allows {MAX_TEMPLATE_DATA_BYTES})"
            return None
        if not email.text and not email.html:
            return "empty body (neither text nor html)"
        return None

    def _retry_delay(
        self, attempt: int, status: int | None, headers: Mapping[str, str] | None
    ) -> float:
        """Seconds to wait before the next attempt (rate-limit reset or full jitter)."""
        if status == 429 and headers is not None:
            reset_raw = headers.get("X-RateLimit-Reset")
            if reset_raw is not None:
                try:
                    wait = float(reset_raw) - self._clock()
                except ValueError:
                    wait = -1.0
                if wait > 0:
                    return min(wait, self._max_backoff_s)
        ceiling = min(self._max_backoff_s, self._base_backoff_s * (2 ** (attempt - 1)))
        return self._rng.uniform(0.0, ceiling)

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything key- or bearer-shaped) from ``text``."""
        text = text.replace(self._api_key, _REDACTED)
        text = _BEARER_RE.sub(r"\1" + _REDACTED, text)
        return _SG_KEY_RE.sub(_REDACTED, text)

    def _outcome(
        self,
        email: OutgoingEmail,
        status: SendStatus,
        message_id: str | None,
        error: str | None,
        attempts: int,
    ) -> SendOutcome:
        """Build a ``SendOutcome`` with a scrubbed, length-limited error text."""
        if error is not None:
            error = self._scrub(error)
            if len(error) > _MAX_ERROR_LEN:
                error = error[: _MAX_ERROR_LEN - 3] + "..."
        return SendOutcome(
            message_key=email.message_key,
            status=status,
            provider_message_id=message_id,
            error=error,
            attempts=attempts,
            retryable=status == "failed" and (error or "").startswith("gave up after"),
        )
