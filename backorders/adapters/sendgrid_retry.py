"""SendGrid delivery policy: how long a 429 or a 5xx waits, and one pace for every request.

The rule (docs/emails.md, "Rate limits"):

* a 429's wait is its ``Retry-After`` (seconds, or an HTTP-date), else its
  ``X-RateLimit-Reset`` (epoch seconds) when that lies in the next
  ``MAX_RESET_AHEAD_S`` seconds; a reset in the past or further away is not believed and
  the wait is the exponential backoff with full jitter. Every wait is capped at the
  sender's ``max_backoff_s``.
* a 429 pauses every request of the sender (all threads), not the one that got it: the
  pace holds a shared not-before time, and an answer with ``X-RateLimit-Remaining: 0``
  and a believable reset sets it too, before any 429.
* the pace learns the server's rate: at a 429 that the request rate explains it spaces
  requests at 90 % of ``X-RateLimit-Limit`` (or, without it, of the requests accepted in
  the second before), then speeds up slowly while none is refused, so that a limited
  server is used at close to its limit without a 429 per window (``Pace.refused``).

Waits go through the sender's ``sleep`` (``backorders.interrupt.wait`` by default), so a
stop request ends them at once.
"""

from __future__ import annotations

import collections
import email.utils
import threading
from collections.abc import Callable, Mapping

from backorders import interrupt

MAX_RESET_AHEAD_S = 120.0  # an X-RateLimit-Reset further ahead than this is not a usable epoch
_BACKOFF_SHARE = 0.9  # pace at this share of the rate seen accepted before a 429
_SPEED_UP = 0.03  # then 0.03 requests/s faster per accepted request (3 % a second)


def interruptible_sleep(seconds: float) -> None:
    """Sleep up to ``seconds``, waking at once on a stop request (SIGTERM/SIGINT)."""
    interrupt.wait(max(0.0, seconds))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by name, whatever its case (urllib's message objects or a dict)."""
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:
        low = name.lower()
        for k, v in headers.items():
            if k.lower() == low:
                return str(v)
    return None if value is None else str(value)


def retry_after_s(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP-date), else None."""
    raw = _header(headers, "Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def believable_reset_s(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` when it is a believable epoch, else None."""
    raw = _header(headers, "X-RateLimit-Reset")
    if raw is None:
        return None
    try:
        wait = float(raw) - now
    except ValueError:
        return None
    return wait if 0.0 < wait <= MAX_RESET_AHEAD_S else None


def rate_limit_wait_s(headers: Mapping[str, str] | None, now: float) -> float | None:
    """What a 429 asks to wait: Retry-After first, then a believable reset; None: no hint."""
    wait = retry_after_s(headers, now)
    return wait if wait is not None else believable_reset_s(headers, now)


class Pace:
    """The not-before time and request spacing shared by every request of one sender."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait_s: float,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._refused_until = 0.0  # the pause of the last 429 (Remaining: 0 pauses do not count)
        self._next_slot = 0.0
        self._rate: float | None = None  # requests per second; None: unpaced
        self._ceiling: float | None = None  # X-RateLimit-Limit, once a 429 showed it applies
        self._accepted: collections.deque[float] = collections.deque()
        self.rate_limited = 0  # 429 answers seen

    @property
    def rate(self) -> float | None:
        """The learned request rate (requests per second), None while unpaced."""
        return self._rate

    def before_request(self) -> float | None:
        """Wait for this request's turn; its start time, or None if a stop was asked for."""
        while True:
            if interrupt.requested():
                return None
            with self._lock:
                now = self._clock()
                start = max(now, self._not_before)
                if self._rate is not None:  # claim the next slot of the pace
                    start = max(start, self._next_slot)
                    self._next_slot = start + 1.0 / self._rate
                if start <= now:
                    return now
            self._sleep(start - now)
            if interrupt.requested():
                return None
            with self._lock:
                if self._not_before <= start:  # no 429 moved the pause while we waited
                    return start

    def accepted(self, started: float, headers: Mapping[str, str] | None) -> None:
        """A request that started at ``started`` was accepted; speed up, heed Remaining: 0."""
        now = self._clock()
        with self._lock:
            self._accepted.append(started)
            while self._accepted and self._accepted[0] < now - 1.0:
                self._accepted.popleft()
            if self._rate is not None:
                self._rate += _SPEED_UP
                if self._ceiling is not None:  # a known limit: stay just under it
                    self._rate = min(self._rate, 0.95 * self._ceiling)
            if _header(headers, "X-RateLimit-Remaining") == "0":
                reset = believable_reset_s(headers, now)
                if reset is not None:
                    self._not_before = max(self._not_before, now + min(reset, self._max_wait_s))

    def refused(self, wait_s: float, limit: int | None = None) -> None:
        """A 429: pause every request for ``wait_s``; slow down when the rate explains it.

        With ``X-RateLimit-Limit`` (``limit``), the pace becomes 90 % of it when at least
        80 % of it was accepted in the second before (the window is about a second);
        otherwise the 429 is not the request rate's doing (a longer window, a fault) and
        only the pause applies. Without the header, 90 % of what was accepted in the second
        before, cut at most once a second, and never below 1 request a second.
        """
        now = self._clock()
        with self._lock:
            self.rate_limited += 1
            pause = now + min(wait_s, self._max_wait_s)
            self._not_before = max(self._not_before, pause)
            if now < self._refused_until:
                return  # the requests in flight at the last cut say nothing new
            while self._accepted and self._accepted[0] < now - 1.0:
                self._accepted.popleft()
            seen = len(self._accepted)
            if limit is not None and limit > 0:
                if seen >= 0.8 * limit:
                    self._rate = _BACKOFF_SHARE * limit
                    self._ceiling = float(limit)
                    self._refused_until = max(pause, now + 1.0)
            elif seen >= 2:
                target = _BACKOFF_SHARE * seen
                self._rate = target if self._rate is None else max(1.0, min(self._rate, target))
                self._refused_until = max(pause, now + 1.0)
