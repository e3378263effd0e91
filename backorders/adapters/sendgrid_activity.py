"""SendGrid's Email Activity API: which of our emails it lists, by their message_key.

``GET /v3/messages?query=...&limit=...`` (checked in SendGrid's docs and OpenAPI spec):
needs the paid "additional email activity history" add-on and a key with Email Activity
access (without them: 400 "authorization required", 401 or 403 "access forbidden"); 6
requests a minute (429 beyond); ``limit`` 1..1000; answers ``{"messages": [{"msg_id",
"to_email", "status", ...}]}`` without the custom args, so a lookup by
``unique_args['message_key'] IN (...)`` is matched back to keys by recipient.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError

from backorders.adapters.sendgrid_redact import sendgrid_error_text
from backorders.domain.email import ActivityLookup

_log = logging.getLogger(__name__)


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


def spread_by_recipient(
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


class ActivityLookupMixin:
    """Email Activity lookups for SendGridSender (its client, retry policy and scrubbing)."""

    _client: Any
    _max_attempts: int
    _timeout_s: float
    _sleep: Callable[[float], None]

    def _retry_delay(
        self, attempt: int, status: int | None, headers: Mapping[str, str] | None
    ) -> float:
        raise NotImplementedError

    def _scrub(self, text: str) -> str:
        raise NotImplementedError

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
        for n, chunk in enumerate(spread_by_recipient(emails, max(1, keys_per_query))):
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
                detail = sendgrid_error_text(getattr(exc, "body", None))
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
