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
  installed on that logger when backorders.adapters.redact is imported (here).
* An empty/None ``api_key`` silently falls back to ``$SENDGRID_API_KEY``; this adapter
  refuses an empty key instead.
* Query parameters are encoded with ``urllib.parse.urlencode`` (spaces as ``+``), which is

Payloads: sendgrid_payload; Email Activity: sendgrid_activity; error texts: sendgrid_redact;
redaction (shared with the Stripe sender): redact.
"""

from __future__ import annotations

import http.client
import logging
import random
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient

from backorders.adapters.redact import REDACTED, scrub
from backorders.adapters.sendgrid_activity import ActivityLookupMixin, activity_query
from backorders.adapters.sendgrid_payload import (
    MAX_PERSONALIZATIONS,
    build_batch_payload,
    build_mail_payload,
    by_categories,
    chunks,
)
from backorders.adapters.sendgrid_redact import sendgrid_error_text
from backorders.adapters.sendgrid_retry import Pace, interruptible_sleep, rate_limit_wait_s
from backorders.domain.email import (
    MAX_TEMPLATE_DATA_BYTES,
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
]

_log = logging.getLogger(__name__)
_MAX_ERROR_LEN = 500


def _limit(headers: Mapping[str, str] | None) -> int | None:
    """X-RateLimit-Limit as a positive number, else None."""
    raw = headers.get("X-RateLimit-Limit") if headers is not None else None
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if value > 0 else None


class SendGridSender(ActivityLookupMixin):
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
        sleep: Callable[[float], None] = interruptible_sleep,
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
        # one pace for every thread of this sender: a 429 pauses them all (sendgrid_retry)
        self._pace = Pace(clock=clock, sleep=sleep, max_wait_s=self._max_backoff_s)
        self.stop_reason: str | None = None  # set by a refused API key: send nothing more
        self._client = SendGridAPIClient(api_key=api_key, host=self._host)
        # No timeout by default in the client: set it on the base client (inherited by the
        # chained sub-clients) and also pass it per call in _post().
        self._client.client.timeout = self._timeout_s

    def __repr__(self) -> str:
        """Describe the sender without revealing the API key."""
        return (
            f"SendGridSender(host={self._host!r}, from_email={self._from_email!r}, "
            f"sandbox={self._sandbox!r}, timeout_s={self._timeout_s!r}, "
            f"max_attempts={self._max_attempts!r}, api_key='{REDACTED}')"
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

    @property
    def rate_limited(self) -> int:
        """How many 429 answers Mail Send gave this sender."""
        return self._pace.rate_limited

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """Send these emails: one request per rendered email, templated ones together.

        A rendered email's subject and bodies are its own, so it travels alone (SendGrid
        personalizations share one subject and content). Emails with the same dynamic
        template and categories share a request of up to 1,000 personalizations, each with
        its own data; SendGrid accepts or rejects a request whole, so they share its
        outcome, and a 400 on several is split in halves and retried (a 400 means nothing
        was accepted), so one bad email cannot fail its neighbours.
        """
        outcomes: dict[str, SendOutcome] = {}
        templated: list[OutgoingEmail] = []
        for email in emails:
            problem = self._precheck(email)
            if problem is not None:
                outcomes[email.message_key] = self._outcome(email, "failed", None, problem, 0)
            elif email.template_id is not None:
                templated.append(email)
            else:
                outcomes[email.message_key] = self.send(email)
        for group in by_categories(templated):
            for chunk in chunks(group, MAX_PERSONALIZATIONS):
                for outcome in self._send_chunk(chunk):
                    outcomes[outcome.message_key] = outcome
        return [outcomes[e.message_key] for e in emails]

    def _send_chunk(self, chunk: Sequence[OutgoingEmail]) -> list[SendOutcome]:
        """One request for ``chunk`` (one template); bisect on a 400 so a bad email fails alone."""
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
        """POST one payload with retries; (status, X-Message-Id, error, requests made).

        Each attempt waits for the sender's pace (a 429 pauses every thread); 5xx and
        connection failures back off with full jitter. A refused API key (401/403) stops
        the sender: this and every later email is ``not_sent``. A stop request ends the
        waits: the email is ``not_sent`` (nothing of it was accepted).
        """
        last_error = "no attempt made"
        made = 0
        for attempt in range(1, self._max_attempts + 1):
            if self.stop_reason is not None:
                return "not_sent", None, self.stop_reason, made
            started = self._pace.before_request()
            if started is None:
                return "not_sent", None, f"not sent: a stop was requested ({last_error})", made
            made = attempt
            try:
                response = self._post(payload)
            except SendGridHTTPError as exc:
                status = int(exc.status_code)
                headers = getattr(exc, "headers", None)
                detail = sendgrid_error_text(getattr(exc, "body", None))
                last_error = f"HTTP {status}" + (f": {detail}" if detail else "")
                if status in (401, 403):
                    self.stop_reason = (
                        f"SendGrid refused the API key (HTTP {status}"
                        + (f": {self._scrub(detail)[:200]}" if detail else "")
                        + "): check SENDGRID_API_KEY and its Mail Send permission; "
                        "sending stopped, the remaining emails stay pending"
                    )
                    return "not_sent", None, self.stop_reason, attempt
                if status == 429:
                    hinted = rate_limit_wait_s(headers, self._clock())
                    delay = hinted if hinted is not None else self._backoff(attempt)
                    self._pace.refused(delay, _limit(headers))  # every thread waits for it
                elif 500 <= status <= 599:
                    delay = self._backoff(attempt)
                else:
                    return "failed", None, last_error, attempt
            except urllib.error.URLError as exc:
                # Raised by urllib only while connecting/writing: the request was not
                # (completely) delivered, so retrying cannot create a duplicate.
                last_error = f"request not delivered: {exc.reason}"
                delay = self._backoff(attempt)
            except (OSError, http.client.HTTPException) as exc:
                # Read timeout / connection dropped after the request was written.
                error = (
                    f"no response after sending ({type(exc).__name__}: {exc}); "
                    "SendGrid may or may not have accepted it"
                )
                return "unknown", None, error, attempt
            else:
                self._pace.accepted(started, response.headers)
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
                if not last_error.startswith("HTTP 429"):
                    self._sleep(delay)  # a 429's wait is the pace's, shared by all threads
        return (
            "failed",
            None,
            f"gave up after {self._max_attempts} attempts: {last_error}",
            (self._max_attempts),
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

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped at max_backoff_s."""
        ceiling = min(self._max_backoff_s, self._base_backoff_s * (2 ** (attempt - 1)))
        return self._rng.uniform(0.0, ceiling)

    def _retry_delay(
        self, attempt: int, status: int | None, headers: Mapping[str, str] | None
    ) -> float:
        """Seconds before the next attempt: a 429's Retry-After or believable reset, or jitter."""
        if status == 429:
            hinted = rate_limit_wait_s(headers, self._clock())
            if hinted is not None:
                return min(hinted, self._max_backoff_s)
        return self._backoff(attempt)

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything key- or bearer-shaped) from ``text``."""
        return scrub(text, self._api_key)

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
