"""SendGrid v3 Mail Send request bodies: one email, or many personalizations of one request."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from backorders.domain.email import OutgoingEmail, safe_header_value


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


def by_categories(emails: Sequence[OutgoingEmail]) -> list[list[OutgoingEmail]]:
    """Emails that can share a request: same categories and same template (or none)."""
    groups: dict[tuple[tuple[str, ...], str | None], list[OutgoingEmail]] = {}
    for e in emails:
        groups.setdefault((e.categories, e.template_id), []).append(e)
    return list(groups.values())


def chunks(items: Sequence[OutgoingEmail], size: int) -> Iterator[Sequence[OutgoingEmail]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
