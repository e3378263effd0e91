"""Checks of a Mail Send body's ``personalizations`` block (recipients, limits, data)."""

from __future__ import annotations

import json
import re
from typing import Any

from backorders.devtools.sendgrid_server.limits import (
    MAX_CUSTOM_ARGS_BYTES,
    MAX_PERSONALIZATIONS,
    MAX_RECIPIENTS,
    MAX_SUBSTITUTIONS_BYTES,
    MAX_TEMPLATE_DATA_BYTES,
)
from backorders.devtools.sendgrid_server.limits import error as _error

_ADDRESS_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]{2,}$")


def non_empty_str(value: object) -> bool:
    """True for a string with at least one character."""
    return isinstance(value, str) and len(value) > 0


def valid_address_obj(value: object) -> bool:
    """True for ``{"email": "<plausible address>", ["name": str]}``."""
    if not isinstance(value, dict):
        return False
    email = value.get("email")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        return False
    return isinstance(email, str) and bool(_ADDRESS_RE.match(email))


def _byte_size(block: dict[str, str]) -> int:
    """Bytes of a string map's keys and values (UTF-8)."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in block.items())


def _string_map(value: object) -> bool:
    """True for an object whose keys and values are all strings."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _check_recipients(p: dict[str, Any], i: int, errors: list[dict[str, Any]]) -> int:
    """Check one personalization's to, cc and bcc; return how many recipients it has."""
    count = 0
    seen: set[str] = set()
    for kind in ("to", "cc", "bcc"):
        group = p.get(kind, [])
        if not isinstance(group, list):
            errors.append(
                _error(f"The {kind} field must be an array.", f"personalizations.{i}.{kind}")
            )
            continue
        for j, rcpt in enumerate(group):
            count += 1
            if not valid_address_obj(rcpt):
                errors.append(
                    _error(
                        "Does not contain a valid address.",
                        f"personalizations.{i}.{kind}.{j}.email",
                    )
                )
                continue
            if any(c in (rcpt.get("name") or "") for c in ",;"):
                errors.append(
                    _error(
                        "The to.name, cc.name, and bcc.name personalizations cannot include "
                        "either the ; or , characters.",
                        f"personalizations.{i}.{kind}.{j}.name",
                    )
                )
            addr = str(rcpt["email"]).lower()
            if addr in seen:
                errors.append(
                    _error(
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{rcpt['email']}] in the personalizations.{i}.{kind} field.",
                        f"personalizations.{i}.{kind}.{j}.email",
                    )
                )
            seen.add(addr)
    return count


def _check_subject_and_data(
    p: dict[str, Any], i: int, *, dynamic: bool, errors: list[dict[str, Any]]
) -> None:
    """Check one personalization's subject, template data and substitutions."""
    if "subject" in p and not isinstance(p["subject"], str):
        errors.append(_error("The subject must be a string.", f"personalizations.{i}.subject"))
    elif isinstance(p.get("subject"), str) and ("\r" in p["subject"] or "\n" in p["subject"]):
        errors.append(
            _error("The subject may not contain line breaks.", f"personalizations.{i}.subject")
        )
    data = p.get("dynamic_template_data")
    if data is not None and not isinstance(data, dict):
        errors.append(
            _error(
                "The dynamic_template_data must be an object.",
                f"personalizations.{i}.dynamic_template_data",
            )
        )
    elif data is not None and len(json.dumps(data).encode()) > MAX_TEMPLATE_DATA_BYTES:
        errors.append(
            _error(
                f"The total size of dynamic_template_data may not exceed "
                f"{MAX_TEMPLATE_DATA_BYTES} bytes per personalization.",
                f"personalizations.{i}.dynamic_template_data",
            )
        )
    subs = p.get("substitutions")
    if dynamic and subs is not None:
        errors.append(
            _error(
                "Substitutions may not be used with dynamic templating",
                f"personalizations.{i}.substitutions",
            )
        )
    if subs is not None and not _string_map(subs):
        errors.append(
            _error(
                "The substitutions must be an object of string values.",
                f"personalizations.{i}.substitutions",
            )
        )
    elif subs is not None and _byte_size(subs) > MAX_SUBSTITUTIONS_BYTES:
        errors.append(
            _error(
                f"The total size of substitutions may not exceed {MAX_SUBSTITUTIONS_BYTES} "
                "bytes per personalization.",
                f"personalizations.{i}.substitutions",
            )
        )


def _check_custom_args(
    p: dict[str, Any], i: int, top: object, errors: list[dict[str, Any]]
) -> None:
    """Check one personalization's custom_args, merged over the top-level ones as sent."""
    block = p.get("custom_args")
    if block is None:
        return
    if not _string_map(block):
        errors.append(
            _error(
                "The custom_args must be an object of string values.",
                f"personalizations.{i}.custom_args",
            )
        )
        return
    # Each email carries the top-level custom_args with its personalization's over them.
    merged = {**(top if isinstance(top, dict) and _string_map(top) else {}), **block}
    if _byte_size(merged) >= MAX_CUSTOM_ARGS_BYTES:
        errors.append(
            _error(
                f"The total length of custom arguments must be less than "
                f"{MAX_CUSTOM_ARGS_BYTES} bytes.",
                f"personalizations.{i}.custom_args",
            )
        )


def validate_personalizations(payload: dict[str, Any], errors: list[dict[str, Any]]) -> None:
    """Validate the personalizations block (recipients, uniqueness, limits, template data)."""
    template_id = payload.get("template_id")
    dynamic = isinstance(template_id, str) and template_id.startswith("d-")
    pers = payload.get("personalizations")
    if not isinstance(pers, list) or not pers:
        errors.append(_error("You must have at least one personalization.", "personalizations"))
        return
    if len(pers) > MAX_PERSONALIZATIONS:
        errors.append(
            _error(
                f"The personalization block is limited to {MAX_PERSONALIZATIONS} "
                f"personalizations per API request. You have provided {len(pers)} "
                "personalizations. Please consider splitting this into multiple requests "
                "and resending your request.",
                "personalizations",
            )
        )
        return
    total = 0
    for i, p in enumerate(pers):
        if not isinstance(p, dict):
            errors.append(_error("Personalization must be an object.", f"personalizations.{i}"))
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    "The to array is required for all personalization objects, and must "
                    "have at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            )
            continue
        total += _check_recipients(p, i, errors)
        _check_subject_and_data(p, i, dynamic=dynamic, errors=errors)
        _check_custom_args(p, i, payload.get("custom_args"), errors)
    if total > MAX_RECIPIENTS:
        errors.append(
            _error(
                f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per "
                "request.",
                "personalizations",
            )
        )
