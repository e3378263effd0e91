"""``FakeStripe``: a local Stripe-compatible HTTP server for PaymentIntents (tests and demo)."""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from backorders.devtools.bearer import bearer_token, is_key
from backorders.devtools.stripe_server.ledger import Answer, Intent, Ledger, stripe_error

FAULTS = frozenset({"500", "500_saved", "429", "drop_after_accept"})
_HELD = "\0held"  # internal: the idempotency key a request holds until it is answered


class FakeStripe:
    """In-process stand-in for Stripe's PaymentIntents API (create, retrieve, capture, cancel).

    ``api_key``: the one secret key accepted (401 otherwise); ``rate_limit_per_s``: requests
    per one-second window (429 ``rate_limit`` beyond); ``latency_s``: held before every
    answer, after the request took effect (a client killed during the wait has captured);
    ``fail_next(n, mode)``: ``500``, ``429`` (not carried out), ``500_saved`` (not carried
    out, and the 500 saved under the request's key: replayed to every retry, as Stripe
    does once an endpoint began) or ``drop_after_accept`` (carried out, then the
    connection is closed without an answer). A POST whose
    Idempotency-Key is held by a request still being answered gets Stripe's 409
    ``idempotency_key_in_use`` (nothing carried out, nothing stored under the key).
    """

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        rate_limit_per_s: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be non-empty")
        self.api_key = api_key
        self.host, self.port = host, port
        self.latency_s = latency_s
        self.rate_limit_per_s = rate_limit_per_s
        self.ledger = Ledger(clock)
        self._lock = threading.Lock()
        self._window = (0, 0)  # (second, requests in it)
        self._faults: list[str] = []
        self._in_flight: set[str] = set()  # idempotency keys of requests not yet answered
        self._gate = threading.Event()  # open: answers go out; closed: held after taking effect
        self._gate.set()
        self._request_ids = itertools.count(1)
        self.requests_seen = 0
        self.answered_401 = 0
        self.answered_429 = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> FakeStripe:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Serve in a background thread."""
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """The base URL to give the client as its api base."""
        return f"http://{self.host}:{self.port}"

    # --- fixtures and observations ----------------------------------------------------
    def add_intent(
        self,
        intent_id: str | None,
        amount: int,
        currency: str = "usd",
        *,
        capture_before: float | None = None,
        multicapture: bool = False,
    ) -> Intent:
        """An authorized PaymentIntent (requires_capture) of `amount` minor units."""
        return self.ledger.add_intent(
            intent_id, amount, currency, capture_before=capture_before, multicapture=multicapture
        )

    def intent(self, intent_id: str) -> Intent:
        """The intent as it stands now."""
        return self.ledger.intents[intent_id]

    def captures(self) -> dict[str, list[int]]:
        """Every capture carried out (replays not counted), by intent id."""
        out: dict[str, list[int]] = {}
        for e in self.ledger.executed:
            if e["action"] == "capture":
                out.setdefault(e["intent"], []).append(e["amount"])
        return out

    def hold_answers(self) -> None:
        """Hold the answers of keyed POSTs, after they took effect, until `release_answers()`."""
        self._gate.clear()

    def release_answers(self) -> None:
        """Let the held answers (and all later ones) go out."""
        self._gate.set()

    def fail_next(self, n: int, mode: str) -> None:
        """Make the next `n` authenticated requests fail in `mode` (FAULTS)."""
        if mode not in FAULTS:
            raise ValueError(f"mode must be one of {sorted(FAULTS)}")
        with self._lock:
            self._faults.extend([mode] * n)

    # --- request handling (called by the handler's threads) -------------------------
    def answer(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[Answer, dict[str, str], str | None, str | None]:
        """(status and body, extra headers, fault, the key held until answered) for one."""
        answer, extra, fault = self._answer(method, path, headers, body)
        return answer, extra, fault, extra.pop(_HELD, None)

    def release(self, key: str | None) -> None:
        """The request holding `key` has been answered (or dropped): the key is free."""
        if key is not None:
            with self._lock:
                self._in_flight.discard(key)

    def _answer(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[Answer, dict[str, str], str | None]:
        with self._lock:
            self.requests_seen += 1
        token = bearer_token(headers.get("Authorization", ""))
        if not token:
            with self._lock:
                self.answered_401 += 1
            return (
                stripe_error(
                    401,
                    "You did not provide an API key. You need to provide your "
                    "API key in the Authorization header, using Bearer auth.",
                ),
                {},
                None,
            )
        if not is_key(token, self.api_key):
            with self._lock:
                self.answered_401 += 1
            shown = token[:8] + "*" * 4 + token[-4:] if len(token) > 12 else "****"
            return stripe_error(401, f"Invalid API Key provided: {shown}"), {}, None
        fault = self._take_fault()
        if fault == "500":
            return stripe_error(500, "An unknown error occurred", kind="api_error"), {}, None
        if fault == "429" or not self._admit():
            with self._lock:
                self.answered_429 += 1
            return (
                stripe_error(
                    429,
                    "Request rate limit exceeded. Learn more about rate limits "
                    "here https://stripe.com/docs/rate-limits.",
                    code="rate_limit",
                ),
                {},
                None,
            )
        key = headers.get("Idempotency-Key") if method == "POST" else None
        if key:
            with self._lock:
                busy = key in self._in_flight
                self._in_flight.add(key)
            if busy:  # 409 Conflict, as Stripe answers a key another request is executing with
                return (
                    stripe_error(
                        409,
                        f"Another request with this Idempotency-Key ({key}) is still in "
                        "progress; try again later.",
                        code="idempotency_key_in_use",
                    ),
                    {},
                    None,
                )
        query = urllib.parse.urlsplit(path)
        params = dict(
            urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        )
        crash = None
        if fault == "500_saved":
            crash = stripe_error(500, "An unknown error occurred", kind="api_error")
        try:
            answer, replayed = self.ledger.handle(method, query.path, params, key, crash=crash)
        except BaseException:
            self.release(key)
            raise
        extra = {"Idempotent-Replayed": "true"} if replayed else {}
        if key:
            extra["Idempotency-Key"] = key
            extra[_HELD] = key
        return answer, extra, fault

    def _take_fault(self) -> str | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _admit(self) -> bool:
        """A fixed one-second window of `rate_limit_per_s` requests."""
        if self.rate_limit_per_s is None:
            return True
        second = math.floor(self.ledger.clock())
        with self._lock:
            start, n = self._window
            n = n + 1 if start == second else 1
            self._window = (second, n)
            return n <= self.rate_limit_per_s

    def request_id(self) -> str:
        """A new Request-Id header value."""
        return f"req_local{next(self._request_ids):010d}"


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: never print request lines (they could carry ids into logs)

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            (status, payload), extra, fault, held = fake.answer(
                method, self.path, self.headers, body
            )
            self._reply(status, payload, extra, fault, held=held)

        def _reply(
            self,
            status: int,
            payload: dict[str, Any],
            extra: dict[str, str],
            fault: str | None,
            *,
            held: str | None,
        ) -> None:
            try:
                if fake.latency_s:
                    time.sleep(fake.latency_s)  # after the request took effect, as on Stripe
                if held is not None:  # a keyed request that took effect: its answer may wait
                    fake._gate.wait()
            finally:
                # free the key before the answer goes out: a client holding the answer may
                # send the key again at once, and must get the stored answer, not a 409
                fake.release(held)
            if fault == "drop_after_accept":
                self.close_connection = True
                self.connection.close()
                return
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", fake.request_id())
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up or was killed: it happened

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
