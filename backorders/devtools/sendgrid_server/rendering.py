"""What each recipient of an accepted Mail Send request receives, as SendGrid would build it.

A personalization is one email: its to, cc and bcc recipients all get the same message.
Without a dynamic template every personalization of a request shares the request's
content blocks; what may differ per personalization is only what SendGrid lets differ:
the subject (``personalizations[].subject`` over the top-level ``subject``), the custom
args (the personalization's over the top-level ones) and ``substitutions``, which SendGrid
applies to the text and HTML content, the subject, the reply-to and the custom args
("unique arguments"). They are applied here tag by tag in the order the request lists
them, each over the text the previous one left, so a tag inside a substituted value is
replaced too. With a dynamic (``d-``) template SendGrid renders the body from the
template and ``dynamic_template_data``: the text and HTML are not known here (``None``)
and the data is recorded as sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

RECIPIENT_KINDS = ("to", "cc", "bcc")


def substitute(text: str | None, substitutions: Mapping[str, str]) -> str | None:
    """``text`` with every substitution tag replaced by its value, in the request's order."""
    if text is None:
        return None
    for tag, value in substitutions.items():
        text = text.replace(tag, value)
    return text


def emails_of(message: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One view per personalization of an accepted request: the email its recipients get."""
    dynamic = str(message.get("template_id") or "").startswith("d-")
    content = {c.get("type"): c.get("value", "") for c in message.get("content") or []}
    top_args = message.get("custom_args") or {}
    for p in message.get("personalizations", []):
        subs = p.get("substitutions") or {}
        args = {
            k: substitute(v, subs) for k, v in {**top_args, **(p.get("custom_args") or {})}.items()
        }
        key = args.get("message_key")
        carried = args.get("message_keys")
        reply_to = dict(message.get("reply_to") or {}) or None
        if reply_to is not None:
            reply_to = {k: substitute(v, subs) for k, v in reply_to.items()}
        yield {
            "message_key": key,
            "message_keys": carried.split(",") if carried else ([key] if key else []),
            "custom_args": args,
            "recipients": [
                (kind, rcpt.get("email")) for kind in RECIPIENT_KINDS for rcpt in p.get(kind, [])
            ],
            "to": [r.get("email") for r in p.get("to", [])],
            "subject": substitute(p.get("subject", message.get("subject")), subs),
            "text": None if dynamic else substitute(content.get("text/plain"), subs),
            "html": None if dynamic else substitute(content.get("text/html"), subs),
            "reply_to": reply_to,
            "template_id": message.get("template_id"),
            "dynamic_template_data": p.get("dynamic_template_data"),
            "x_message_id": message["x_message_id"],
            "sandbox": message["sandbox"],
        }


def personalization_deliveries(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per accepted personalization (sandbox included), in arrival order."""
    keep = (
        "message_key",
        "message_keys",
        "to",
        "subject",
        "text",
        "html",
        "template_id",
        "dynamic_template_data",
        "x_message_id",
    )
    return [{k: email[k] for k in keep} for m in messages for email in emails_of(m)]


def recipient_deliveries(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per address that would receive mail (sandbox requests deliver nothing)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message["sandbox"]:
            continue
        for email in emails_of(message):
            for kind, address in email.pop("recipients"):
                out.append({"email": address, "kind": kind, **email})
    return out


def activity_entries(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Email Activity messages of one accepted request, one per recipient, oldest first."""
    if message["sandbox"]:
        return []
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(message["received_at"]))
    sender = (message.get("from") or {}).get("email")
    out: list[dict[str, Any]] = []
    for email in emails_of(message):
        for _kind, address in email["recipients"]:
            out.append(
                {
                    "from_email": sender,
                    "msg_id": f"{message['x_message_id']}.filter0001p1fake1-{len(out)}.0",
                    "subject": email["subject"] or "",
                    "to_email": address,
                    "status": "delivered",
                    "opens_count": 0,
                    "clicks_count": 0,
                    "last_event_time": when,
                    "template_id": message.get("template_id"),
                    "unique_args": email["custom_args"],
                }
            )
    return out
