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
    """One v3 Mail Send body for many emails of one dynamic template: a personalization each.

    Each personalization carries its own recipient, ``custom_args.message_key`` and
    ``dynamic_template_data``; the ``template_id`` and the categories are top-level fields,
    so the emails must share them. Rendered emails (their own subject and bodies) go one
    per request (``build_mail_payload``): personalizations share one subject and content.
    """
    if not 1 <= len(emails) <= MAX_PERSONALIZATIONS:
        raise ValueError(f"a request carries 1 to {MAX_PERSONALIZATIONS} personalizations")
    template_ids = {e.template_id for e in emails}
    if len(template_ids) != 1 or None in template_ids:
        raise ValueError("the emails of one request must share one dynamic template")
    template_id = template_ids.pop()
    sender: dict[str, str] = {"email": from_email}
    if from_name:
        name = safe_header_value(from_name)
        if name:
            sender["name"] = name
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
