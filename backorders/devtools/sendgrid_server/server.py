"""The ``FakeSendGrid`` controller: start/stop, what was received, and fault injection."""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from backorders.devtools.sendgrid_server.activity_query import parse_activity_query
from backorders.devtools.sendgrid_server.http import Server
from backorders.devtools.sendgrid_server.limits import (
    ACTIVITY_MAX_LIMIT,
    ACTIVITY_MODES,
    FAILURE_MODES,
)


class FakeSendGrid:
    """In-process fake of SendGrid's Mail Send endpoint with fault injection."""

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
    ) -> None:
        """Prepare (but do not start) a fake on ``host:port`` (0 picks a free port)."""
        if not api_key:
            raise ValueError("api_key must be non-empty")
        if activity not in ACTIVITY_MODES:
            raise ValueError(f"activity must be one of {sorted(ACTIVITY_MODES)}")
        self.activity = activity
        self.activity_lag_s = activity_lag_s
        self.activity_rate_per_min = activity_rate_per_min
        self._activity_times: collections.deque[float] = collections.deque()
        self._activity_requests = 0
        self.api_key = api_key
        self.host = host
        self.port = port
        self.slow_delay_s = slow_delay_s
        self.clock = clock
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._requests_seen = 0
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
        """Stop serving, wake any 'slow' handlers and close the socket."""
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
        """Snapshot of every accepted message (payload + ``x_message_id`` + ``sandbox``)."""
        with self._lock:
            return list(self._messages)

    @property
    def requests_seen(self) -> int:
        """Number of POST requests received, whatever their outcome."""
        with self._lock:
            return self._requests_seen

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
            if message["sandbox"]:
                continue
            if visible_only and message["received_at"] + self.activity_lag_s > now:
                continue
            top_args = message.get("custom_args") or {}
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(message["received_at"]))
            n = 0
            for p in message.get("personalizations", []):
                args = {**top_args, **(p.get("custom_args") or {})}
                for rcpt in p.get("to", []):
                    out.append(
                        {
                            "from_email": (message.get("from") or {}).get("email"),
                            "msg_id": f"{message['x_message_id']}.filter0001p1fake1-{n}.0",
                            "subject": p.get("subject", message.get("subject", "")),
                            "to_email": rcpt.get("email"),
                            "status": "delivered",
                            "opens_count": 0,
                            "clicks_count": 0,
                            "last_event_time": when,
                            "template_id": message.get("template_id"),
                            "unique_args": args,
                        }
                    )
                    n += 1
        out.reverse()
        return out

    def received_keys(self) -> collections.Counter[str]:
        """Outbox message key -> number of times accepted (per personalization).

        An email that combines several messages counts once for each key it carries.
        """
        return collections.Counter(k for d in self.deliveries() for k in d["message_keys"])

    def deliveries(self) -> list[dict[str, Any]]:
        """One entry per accepted personalization, as the recipient would get it.

        Each has ``message_key`` (the personalization's custom_args over the top-level
        ones), ``message_keys`` (the outbox messages it carries: ``custom_args.message_keys``
        split on commas, else the message_key), ``to``, ``subject``, ``text``, ``html`` (substitutions applied, as SendGrid
        does) and ``x_message_id``.
        """
        out: list[dict[str, Any]] = []
        for message in self.messages:
            top_args = message.get("custom_args") or {}
            content = {c.get("type"): c.get("value", "") for c in message.get("content") or []}
            for p in message.get("personalizations", []):
                args = {**top_args, **(p.get("custom_args") or {})}
                key = args.get("message_key")
                carried = args.get("message_keys")
                keys = carried.split(",") if carried else ([key] if key else [])
                subs = p.get("substitutions") or {}
                body = {}
                for mime, value in content.items():
                    for tag, sub in subs.items():
                        value = value.replace(tag, sub)
                    body[mime] = value
                out.append(
                    {
                        "message_key": key,
                        "message_keys": keys,
                        "to": [r.get("email") for r in p.get("to", [])],
                        "subject": p.get("subject", message.get("subject")),
                        "text": body.get("text/plain"),
                        "html": body.get("text/html"),
                        "template_id": message.get("template_id"),
                        "dynamic_template_data": p.get("dynamic_template_data"),
                        "x_message_id": message["x_message_id"],
                    }
                )
        return out

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
    def _activity_answer(
        self, params: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, headers) for one authenticated Email Activity request."""
        with self._lock:
            self._activity_requests += 1
            mode = self.activity
            if self.activity_rate_per_min is not None:
                now = self.clock()
                while self._activity_times and self._activity_times[0] <= now - 60:
                    self._activity_times.popleft()
                if len(self._activity_times) >= self.activity_rate_per_min:
                    reset = int(self._activity_times[0] + 60) + 1
                    return (
                        429,
                        {"errors": [{"message": "too many requests"}]},
                        {
                            "X-RateLimit-Limit": str(self.activity_rate_per_min),
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": str(reset),
                        },
                    )
                self._activity_times.append(now)
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
            for m in self.activity_messages()
            if matches(m)
        ]
        return 200, {"messages": listed[: int(limit)]}, {}

    def _note_request(self) -> None:
        """Count one incoming request."""
        with self._lock:
            self._requests_seen += 1

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
