"""SendGrid's documented limits and the error object shape the local server answers with."""

from __future__ import annotations

from typing import Any

FAILURE_MODES: frozenset[str] = frozenset(
    {"429", "500", "503", "slow", "drop", "drop_after_accept"}
)
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
MAX_BODY_BYTES = 30 * 1024 * 1024  # SendGrid's documented total message size limit
RATE_LIMIT = 600
MAX_CUSTOM_ARGS_BYTES = 10_000  # per personalization, as SendGrid documents
MAX_SUBSTITUTIONS_BYTES = 10_000  # per personalization, as SendGrid documents
MAX_TEMPLATE_DATA_BYTES = 10_000  # dynamic_template_data per personalization (JSON)
ACTIVITY_MODES: frozenset[str] = frozenset({"available", "no_addon", "forbidden", "down"})
ACTIVITY_MAX_LIMIT = 1000


def error(message: str, field: str | None = None) -> dict[str, Any]:
    """One SendGrid-style error object."""
    return {"message": message, "field": field, "help": None}
