"""The Mail Send request-rate limit: a fixed one-second window and the headers of its answers.

SendGrid allots "a specific number of requests per refresh period" and answers 429 with
``{"errors": [{"field": null, "message": "too many requests"}]}`` and ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds) once it is spent. The
window here is fixed and aligned to the clock's whole seconds: the window of time ``t`` is
``[floor(t), floor(t) + 1)``, so ``X-RateLimit-Reset`` is exactly its end. Every
authenticated Mail Send request that arrives in a window counts against it, whatever its
answer (202, 400, 429, an injected fault); a request refused with 429 is not delivered.

``headers`` picks how the 429 is dressed:

- ``sendgrid``: SendGrid's three headers on every answer (on a 429 ``Remaining: 0``).
- ``retry_after``: what an independent SendGrid-compatible server did: ``Retry-After: 1``
  and an ``X-RateLimit-Reset`` about an hour away (not a usable epoch for the window).
- ``reset_past``: an ``X-RateLimit-Reset`` an hour in the past and no ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

RATE_LIMIT_HEADER_MODES: frozenset[str] = frozenset({"sendgrid", "retry_after", "reset_past"})
_FAR_S = 3600  # "about an hour" for the retry_after and reset_past modes


class RateLimiter:
    """Counts requests per one-second window; says whether one more may pass."""

    def __init__(
        self, per_s: float, *, headers: str = "sendgrid", clock: Callable[[], float]
    ) -> None:
        """Allow ``floor(per_s)`` requests per window of one second of ``clock``."""
        if not per_s >= 1:
            raise ValueError("rate_limit_per_s must be at least 1 (requests per second)")
        if headers not in RATE_LIMIT_HEADER_MODES:
            raise ValueError(f"rate_limit_headers must be one of {sorted(RATE_LIMIT_HEADER_MODES)}")
        self.limit = math.floor(per_s)
        self.headers = headers
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._count = 0

    def admit(self) -> tuple[bool, dict[str, str]]:
        """Count one request: (allowed, headers for its answer)."""
        now = self.clock()
        window = math.floor(now)
        with self._lock:
            if window != self._window:
                self._window, self._count = window, 0
            self._count += 1
            allowed = self._count <= self.limit
            remaining = max(0, self.limit - self._count)
        if self.headers == "sendgrid":
            return allowed, {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(remaining if allowed else 0),
                "X-RateLimit-Reset": str(window + 1),
            }
        if allowed:
            return True, {}
        refused = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": "0"}
        if self.headers == "retry_after":
            return False, {
                **refused,
                "Retry-After": "1",
                "X-RateLimit-Reset": str(int(now) + _FAR_S),
            }
        return False, {**refused, "X-RateLimit-Reset": str(int(now) - _FAR_S)}
