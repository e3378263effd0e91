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


def validate_personalizations(payload: dict[str, Any], errors: list[dict[str, Any]]) -> None:
    """Validate the personalizations block (recipients, uniqueness, limits, template data)."""
    template_id = payload.get("template_id")
    dynamic = isinstance(template_id, str) and template_id.startswith("d-")
    pers = payload.get("personalizations")
    if not isinstance(pers, list) or not pers:
        errors.append(
            _error(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        return
    if len(pers) > MAX_PERSONALIZATIONS:
        errors.append(
            _error(
                f"The personalizations field must have no more than {MAX_PERSONALIZATIONS} items.",
                "personalizations",
            )
        )
        return
    total = 0
    limit_sub = MAX_SUBSTITUTIONS_BYTES
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
        seen: set[str] = set()
        for kind in ("to", "cc", "bcc"):
            group = p.get(kind, [])
            if not isinstance(group, list):
                errors.append(
                    _error(f"The {kind} field must be an array.", f"personalizations.{i}.{kind}")
                )
                continue
            for j, rcpt in enumerate(group):
                total += 1
                if not valid_address_obj(rcpt):
                    errors.append(
                        _error(
                            "Does not contain a valid address.",
                            f"personalizations.{i}.{kind}.{j}.email",
                        )
                    )
                    continue
                addr = str(rcpt["email"]).lower()
                if addr in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be "
                            "unique between to, cc, and bcc.",
                            f"personalizations.{i}.{kind}.{j}.email",
                        )
                    )
                seen.add(addr)
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
        if dynamic and p.get("substitutions") is not None:
            errors.append(
                _error(
                    "Substitutions may not be used with dynamic templating",
                    f"personalizations.{i}.substitutions",
                )
            )
        for field, limit in (("custom_args", MAX_CUSTOM_ARGS_BYTES), ("substitutions", limit_sub)):
            block = p.get(field)
            if block is None:
                continue
            if not isinstance(block, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in block.items()
            ):
                errors.append(
                    _error(
                        f"The {field} must be an object of string values.",
                        f"personalizations.{i}.{field}",
                    )
                )
            elif sum(len(k.encode()) + len(v.encode()) for k, v in block.items()) > limit:
                errors.append(
                    _error(
                        f"The total size of {field} may not exceed {limit} bytes per "
                        "personalization.",
                        f"personalizations.{i}.{field}",
                    )
                )
    if total > MAX_RECIPIENTS:
        errors.append(
            _error(
                f"The total number of recipients must be no more than {MAX_RECIPIENTS}.",
                "personalizations",
            )
        )
