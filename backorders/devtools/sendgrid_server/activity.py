"""The Email Activity endpoint (``GET /v3/messages``): modes, its rate limit, the listing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backorders.devtools.sendgrid_server.activity_query import parse_activity_query
from backorders.devtools.sendgrid_server.limits import ACTIVITY_MAX_LIMIT

if TYPE_CHECKING:
    from backorders.devtools.sendgrid_server.server import FakeSendGrid


def activity_answer(
    fake: FakeSendGrid, params: dict[str, list[str]]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers) for one authenticated Email Activity request."""
    with fake._lock:
        fake._activity_requests += 1
        mode = fake.activity
        if fake.activity_rate_per_min is not None:
            now = fake.clock()
            while fake._activity_times and fake._activity_times[0] <= now - 60:
                fake._activity_times.popleft()
            if len(fake._activity_times) >= fake.activity_rate_per_min:
                reset = int(fake._activity_times[0] + 60) + 1
                return (
                    429,
                    {"errors": [{"message": "too many requests"}]},
                    {
                        "X-RateLimit-Limit": str(fake.activity_rate_per_min),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(reset),
                    },
                )
            fake._activity_times.append(now)
    if mode == "no_addon":
        return 400, {"errors": [{"message": "authorization required"}]}, {}
    if mode == "forbidden":
        return 403, {"errors": [{"field": None, "message": "access forbidden"}]}, {}
    if mode == "down":
        return 500, {"errors": [{"message": "internal error"}]}, {}
    try:
        limit = float(params.get("limit", ["10"])[0])
    except ValueError:
        limit = -1
    if not 1 <= limit <= ACTIVITY_MAX_LIMIT or limit != int(limit):
        return (
            400,
            {"errors": [{"message": "limit must be an integer from 1 to 1000"}]},
            {},
        )
    query = params.get("query", [""])[0]
    try:
        matches = parse_activity_query(query) if query else (lambda _m: True)
    except ValueError as exc:
        return 400, {"errors": [{"message": str(exc)}]}, {}
    listed = [
        {k: v for k, v in m.items() if k not in ("template_id", "unique_args")}
        for m in fake.activity_messages()
        if matches(m)
    ]
    return 200, {"messages": listed[: int(limit)]}, {}
