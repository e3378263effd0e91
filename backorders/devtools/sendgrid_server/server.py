"""The ``FakeSendGrid`` controller: start/stop, what was received, and fault injection."""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import Any

from backorders.devtools.bearer import bearer_token, is_key
from backorders.devtools.sendgrid_server import rendering
from backorders.devtools.sendgrid_server.http import Answer, Server, errors_answer
from backorders.devtools.sendgrid_server.limits import ACTIVITY_MODES, FAILURE_MODES
from backorders.devtools.sendgrid_server.rate_limit import RateLimiter


class FakeSendGrid:
    """In-process stand-in for SendGrid's Mail Send and Email Activity, with faults."""

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_delay_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        activity: str = "available",
        activity_lag_s: float = 0.0,
        activity_rate_per_min: int | None = None,
        rate_limit_per_s: float | None = None,
        rate_limit_headers: str = "sendgrid",
        latency_s: float = 0.0,
        forbidden_keys: Collection[str] = (),
    ) -> None:
        """Prepare (but do not start) a fake on ``host:port`` (0 picks a free port).

        ``rate_limit_per_s``: Mail Send requests allowed per one-second window (429 beyond,
        headers per ``rate_limit_headers``, see ``rate_limit``); ``latency_s``: the wait
        before every Mail Send answer; ``forbidden_keys``: keys that exist but lack the
        mail.send scope (403).
        """
        if not api_key:
            raise ValueError("api_key must be non-empty")
        if activity not in ACTIVITY_MODES:
            raise ValueError(f"activity must be one of {sorted(ACTIVITY_MODES)}")
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        if api_key in forbidden_keys:
            raise ValueError("api_key cannot also be a forbidden key")
        self.activity = activity
        self.activity_lag_s = activity_lag_s
        self.activity_rate_per_min = activity_rate_per_min
        self._activity_times: collections.deque[float] = collections.deque()
        self._activity_requests = 0
        self.api_key = api_key
        self.forbidden_keys = frozenset(forbidden_keys)
        self.host = host
        self.port = port
        self.slow_delay_s = slow_delay_s
        self.latency_s = latency_s
        self.clock = clock
        self.rate_limiter = (
            None
            if rate_limit_per_s is None
            else RateLimiter(rate_limit_per_s, headers=rate_limit_headers, clock=clock)
        )
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._requests_seen = 0
        self._answered_429 = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self._next_id = 0
        self._queued: collections.deque[str] = collections.deque()
        self._rate = 0.0
        self._rate_modes: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeSendGrid:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("FakeSendGrid already started")
        self._stopping.clear()
        self._server = Server((self.host, self.port), self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-sendgrid:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any held ('slow', latency) handlers and close the socket."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSendGrid:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to pass as ``host=`` to the SendGrid client."""
        if self._server is None:
            raise RuntimeError("FakeSendGrid is not running")
        return f"http://{self.host}:{self.port}"

    # -- observations --------------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        """Snapshot of every accepted request (payload + ``x_message_id``, ``sandbox``,
        ``received_at``)."""
        with self._lock:
            return list(self._messages)

    @property
    def requests_seen(self) -> int:
        """Number of POST requests received, whatever their outcome."""
        with self._lock:
            return self._requests_seen

    @property
    def accepted_request_times(self) -> list[float]:
        """``clock()`` time at which each accepted Mail Send request was accepted, in order."""
        with self._lock:
            return [m["received_at"] for m in self._messages]

    def accepted_rate_per_s(self) -> float | None:
        """Accepted requests per second from the first to the last (None below two)."""
        times = self.accepted_request_times
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])

    @property
    def rate_limited_requests(self) -> int:
        """Number of Mail Send requests answered 429 (rate limit or injected fault)."""
        with self._lock:
            return self._answered_429

    @property
    def in_flight(self) -> int:
        """Mail Send requests being handled right now (received, not yet answered)."""
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most Mail Send requests that were being handled at once."""
        with self._lock:
            return self._peak_in_flight

    @property
    def activity_requests(self) -> int:
        """Number of authenticated Email Activity requests, whatever their outcome."""
        with self._lock:
            return self._activity_requests

    def activity_messages(self, *, visible_only: bool = True) -> list[dict[str, Any]]:
        """The Email Activity feed: one message per accepted recipient, newest first.

        Sandbox requests are not in it (SendGrid does not deliver them). With
        ``visible_only``, messages accepted less than ``activity_lag_s`` ago are left out.
        """
        now = self.clock()
        out: list[dict[str, Any]] = []
        for message in self.messages:
            if visible_only and message["received_at"] + self.activity_lag_s > now:
                continue
            out.extend(rendering.activity_entries(message))
        out.reverse()
        return out

    def received_keys(self) -> collections.Counter[str]:
        """Outbox message key -> number of times accepted (per personalization).

        An email that combines several messages counts once for each key it carries.
        SendGrid has no idempotency key: a request sent twice is delivered twice.
        """
        return collections.Counter(k for d in self.deliveries() for k in d["message_keys"])

    def deliveries(self) -> list[dict[str, Any]]:
        """One entry per accepted personalization (sandbox included), as its email reads.

        Each has ``message_key`` (the personalization's custom_args over the top-level
        ones), ``message_keys`` (the outbox messages it carries: ``custom_args.message_keys``
        split on commas, else the message_key), ``to``, ``subject``, ``text``, ``html``
        (substitutions applied as SendGrid does, see ``rendering``), ``template_id``,
        ``dynamic_template_data`` and ``x_message_id``.
        """
        return rendering.personalization_deliveries(self.messages)

    def recipient_deliveries(self) -> list[dict[str, Any]]:
        """One entry per address (to, cc and bcc) that would receive mail, as it would read.

        Each has ``email``, ``kind`` (to/cc/bcc), ``subject``, ``text``, ``html``,
        ``reply_to`` and ``custom_args`` after substitutions, ``message_key(s)``,
        ``template_id``, ``dynamic_template_data``, ``x_message_id``. Sandbox requests
        deliver nothing and are left out.
        """
        return rendering.recipient_deliveries(self.messages)

    # -- fault injection -----------------------------------------------------------------
    def fail_next(self, n: int, mode: str) -> None:
        """Apply failure ``mode`` to the next ``n`` authenticated requests."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(FAILURE_MODES)}")
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._queued.extend([mode] * n)

    def set_failure_rate(self, rate: float, modes: Sequence[str], seed: int) -> None:
        """Inject a random mode from ``modes`` into a ``rate`` fraction of requests."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        unknown = set(modes) - FAILURE_MODES
        if unknown or (rate > 0 and not modes):
            raise ValueError(f"invalid modes {sorted(unknown) or modes!r}")
        with self._lock:
            self._rate = rate
            self._rate_modes = tuple(modes)
            self._rng = random.Random(seed)

    # -- internals used by the handler ---------------------------------------------------
    def _authorize(self, authorization: str) -> Answer | None:
        """None for the right key, else SendGrid's 401 (missing, wrong) or 403 (no scope)."""
        if not authorization:
            return errors_answer(401, "authorization required")
        token = bearer_token(authorization)
        if any(is_key(token, k) for k in self.forbidden_keys):
            return errors_answer(403, "access forbidden")
        if not is_key(token, self.api_key):
            return errors_answer(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        return None

    def _admit(self) -> tuple[bool, dict[str, str]]:
        """Count one request against the rate limit: (allowed, headers for the answer)."""
        return (True, {}) if self.rate_limiter is None else self.rate_limiter.admit()

    def _note_request(self) -> None:
        """Count one incoming request."""
        with self._lock:
            self._requests_seen += 1

    def _note_429(self) -> None:
        """Count one Mail Send request answered 429."""
        with self._lock:
            self._answered_429 += 1

    def _enter(self) -> None:
        """A Mail Send request starts being handled."""
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def _leave(self) -> None:
        """A Mail Send request has been answered (or dropped)."""
        with self._lock:
            self._in_flight -= 1

    def _hold(self) -> None:
        """Wait the latency in this request's own thread (``stop`` cuts it short)."""
        if self.latency_s > 0:
            self._stopping.wait(self.latency_s)

    def _take_failure(self) -> str | None:
        """Pop the next queued failure, else roll the random injector."""
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            if self._rate > 0 and self._rng.random() < self._rate:
                return self._rng.choice(self._rate_modes)
            return None

    def _record(self, payload: dict[str, Any], sandbox: bool) -> str:
        """Store an accepted message and return its ``X-Message-Id``."""
        with self._lock:
            self._next_id += 1
            message_id = f"fake-msg-{self._next_id:08d}"
            record = dict(payload)
            record["x_message_id"] = message_id
            record["sandbox"] = sandbox
            record["received_at"] = self.clock()
            self._messages.append(record)
            return message_id
