"""SendGrid's documented limits and the error object shape the local server answers with."""

from __future__ import annotations

from typing import Any

FAILURE_MODES: frozenset[str] = frozenset(
    {"429", "500", "503", "slow", "drop", "drop_after_accept"}
)
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
# "The total size of your email, including attachments, must be less than 30MB": the
# request body, answered 413 as SendGrid's table of response codes documents.
MAX_BODY_BYTES = 30 * 1024 * 1024
RATE_LIMIT = 600  # X-RateLimit-Limit of an injected ("429" fault) refusal
# "The total length of custom arguments must be less than 10000 bytes": per email, i.e.
# the top-level custom_args with a personalization's over them.
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SUBSTITUTIONS_BYTES = 10_000  # per personalization, as SendGrid documents
MAX_TEMPLATE_DATA_BYTES = 10_000  # dynamic_template_data per personalization (JSON)
ACTIVITY_MODES: frozenset[str] = frozenset({"available", "no_addon", "forbidden", "down"})
ACTIVITY_MAX_LIMIT = 1000


def error(message: str, field: str | None = None) -> dict[str, Any]:
    """One SendGrid-style error object."""
    return {"message": message, "field": field, "help": None}
