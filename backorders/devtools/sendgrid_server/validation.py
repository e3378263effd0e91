"""Validation of a ``POST /v3/mail/send`` body, with SendGrid-style field errors."""

from __future__ import annotations

import re
from typing import Any

from backorders.devtools.sendgrid_server.limits import MAX_CATEGORIES, MAX_CUSTOM_ARGS_BYTES
from backorders.devtools.sendgrid_server.limits import error as _error
from backorders.devtools.sendgrid_server.personalizations import (
    non_empty_str as _non_empty_str,
)
from backorders.devtools.sendgrid_server.personalizations import (
    valid_address_obj as _valid_address_obj,
)
from backorders.devtools.sendgrid_server.personalizations import (
    validate_personalizations as _validate_personalizations,
)

_DYNAMIC_TEMPLATE_RE = re.compile(r"^d-[0-9a-f]{32}$")
_LEGACY_TEMPLATE_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def validate_mail_send(payload: object) -> list[dict[str, Any]]:
    """Return SendGrid-style error objects for a Mail Send body ([] when valid)."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    _validate_personalizations(payload, errors)

    if not _valid_address_obj(payload.get("from")):
        errors.append(
            _error(
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )
    elif not str(payload["from"]["email"]).isascii():
        errors.append(_error("Unicode encoding is not supported for the from field.", "from.email"))

    template_id = payload.get("template_id")
    has_template = _non_empty_str(template_id)
    if template_id is not None and not (
        isinstance(template_id, str)
        and (_DYNAMIC_TEMPLATE_RE.match(template_id) or _LEGACY_TEMPLATE_RE.match(template_id))
    ):
        has_template = False
        errors.append(
            _error(
                "The template_id must be a valid template ID: a dynamic template's "
                "d-<32 hex digits>, or a legacy template's UUID.",
                "template_id",
            )
        )
    pers = payload.get("personalizations")
    all_pers_have_subject = (
        isinstance(pers, list)
        and bool(pers)
        and all(isinstance(p, dict) and _non_empty_str(p.get("subject")) for p in pers)
    )
    if (
        not has_template
        and not _non_empty_str(payload.get("subject"))
        and not all_pers_have_subject
    ):
        errors.append(
            _error(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )

    content = payload.get("content")
    if content is None and has_template:
        pass
    elif not isinstance(content, list) or not content:
        errors.append(
            _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is "
                "required.",
                "content",
            )
        )
    else:
        for k, block in enumerate(content):
            if not isinstance(block, dict) or not _non_empty_str(block.get("type")):
                errors.append(
                    _error(
                        "The content type must be a string at least one character in length.",
                        f"content.{k}.type",
                    )
                )
                continue
            if not _non_empty_str(block.get("value")):
                errors.append(
                    _error(
                        "The content value must be a string at least one character in length.",
                        f"content.{k}.value",
                    )
                )
            if block.get("type") == "text/plain" and k != 0:
                errors.append(
                    _error(
                        "If present, text/plain must be first, followed by text/html, "
                        "followed by any other content.",
                        f"content.{k}.type",
                    )
                )

    custom_args = payload.get("custom_args")
    if custom_args is not None and (
        not isinstance(custom_args, dict)
        or not all(isinstance(v, str) for v in custom_args.values())
    ):
        errors.append(_error("Custom args must be an object of string values.", "custom_args"))
    elif custom_args is not None and (
        sum(len(k.encode()) + len(v.encode()) for k, v in custom_args.items())
        >= MAX_CUSTOM_ARGS_BYTES
    ):
        errors.append(
            _error(
                f"The total length of custom arguments must be less than "
                f"{MAX_CUSTOM_ARGS_BYTES} bytes.",
                "custom_args",
            )
        )

    categories = payload.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(
            _non_empty_str(c) and len(c) <= 255 for c in categories
        ):
            errors.append(
                _error("Categories must be strings of 1 to 255 characters.", "categories")
            )
        elif len(categories) > MAX_CATEGORIES:
            errors.append(
                _error(
                    f"You may not include more than {MAX_CATEGORIES} categories per email.",
                    "categories",
                )
            )

    mail_settings = payload.get("mail_settings")
    if isinstance(mail_settings, dict) and isinstance(mail_settings.get("sandbox_mode"), dict):
        enable = mail_settings["sandbox_mode"].get("enable")
        if not isinstance(enable, bool):
            errors.append(
                _error(
                    "The sandbox mode enable param should be a boolean value.",
                    "mail_settings.sandbox_mode.enable",
                )
            )
    return errors


def is_sandbox(payload: dict[str, Any]) -> bool:
    """True if ``mail_settings.sandbox_mode.enable`` is the boolean ``true``."""
    settings = payload.get("mail_settings")
    if not isinstance(settings, dict):
        return False
    sandbox = settings.get("sandbox_mode")
    return isinstance(sandbox, dict) and sandbox.get("enable") is True
