"""The HTTP side of the local SendGrid server: a threaded server and its request handler.

A Mail Send request goes through, in order: size checks (400/413), path (404), the key
(401 missing or wrong, 403 a key without the mail.send scope), the rate limit (429), an
injected fault, payload validation (400), then it is recorded (delivered) and answered
202 (200 in sandbox mode). Every answer, errors included, waits ``latency_s`` first, in the
request's own thread, so concurrent requests are held side by side, not one after another.
A request that was recorded and then lost its answer (a dropped connection, a client that
gave up) is still delivered, as with SendGrid.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from backorders.devtools.sendgrid_server.activity import activity_answer
from backorders.devtools.sendgrid_server.limits import MAX_BODY_BYTES, RATE_LIMIT
from backorders.devtools.sendgrid_server.limits import error as _error
from backorders.devtools.sendgrid_server.validation import is_sandbox, validate_mail_send

if TYPE_CHECKING:
    from backorders.devtools.sendgrid_server.server import FakeSendGrid


MAIL_SEND_PATH = "/v3/mail/send"


@dataclass(frozen=True)
class Answer:
    """What to write back: a status, an optional JSON body and headers, or nothing at all."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


def errors_answer(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """A SendGrid-style error answer with one error object (``field`` null)."""
    return Answer(status, {"errors": [_error(message)]}, headers or {})


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its FakeSendGrid."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # default 5 overflows under concurrent clients (1 s SYN retry)

    def __init__(self, address: tuple[str, int], fake: FakeSendGrid) -> None:
        """Bind to ``address`` and remember ``fake``."""
        self.fake = fake
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    """Request handler implementing ``POST /v3/mail/send``."""

    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeSendGrid/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and CI logs do not need an access log."""

    def _send_json(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        """Write a response with an optional JSON body."""
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _errors(self, status: int, errors: list[dict[str, Any]]) -> None:
        """Write a SendGrid-style error response."""
        self._send_json(status, {"errors": errors})

    def do_GET(self) -> None:
        """Email Activity: ``GET /v3/messages?query=...&limit=N``; anything else 404/405."""
        fake = self.server.fake
        path, _, raw_query = self.path.partition("?")
        if path.rstrip("/") != "/v3/messages":
            if path.rstrip("/") == MAIL_SEND_PATH:
                self._errors(405, [_error("method not allowed")])
            else:
                self._errors(404, [_error("resource not found")])
            return
        refused = fake._authorize(self.headers.get("Authorization") or "")
        if refused is not None:
            # The activity endpoint has always said "authorization required" for any bad key.
            if refused.status == 401:
                refused = errors_answer(401, "authorization required")
            self._write(refused)
            return
        status, body, headers = activity_answer(fake, urllib.parse.parse_qs(raw_query))
        self._send_json(status, body, headers)

    def do_PUT(self) -> None:
        """Not served."""
        self._errors(405, [_error("method not allowed")])

    do_DELETE = do_PATCH = do_PUT

    def do_POST(self) -> None:
        """Handle one Mail Send request: decide, hold for the latency, answer."""
        fake = self.server.fake
        fake._note_request()
        mail_send = self.path.split("?", 1)[0].rstrip("/") == MAIL_SEND_PATH
        if not mail_send:
            self._write(self._post_answer(fake, mail_send=False))
            return
        fake._enter()
        try:
            answer = self._post_answer(fake, mail_send=True)
            fake._hold()
        finally:
            # Out of flight once answered: the client cannot start its next request before.
            fake._leave()
        self._write(answer)

    def _write(self, answer: Answer) -> None:
        """Write ``answer`` (or close without one); a client that left is not an error."""
        if answer.drop:
            self.close_connection = True
            return
        try:
            self._send_json(answer.status, answer.body, answer.headers)
        except OSError:  # the client gave up (timeout) and closed its end
            self.close_connection = True

    def _post_answer(self, fake: FakeSendGrid, *, mail_send: bool) -> Answer:
        """Decide the answer to one POST, recording the message when it is accepted."""
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return errors_answer(400, "Bad Request")
        if length >= MAX_BODY_BYTES:
            self.close_connection = True
            return errors_answer(
                413, "The JSON payload you have included in your request is too large."
            )
        # Always drain the body before answering, or closing with unread data may reset
        # the connection and the client would never see our status line.
        raw = self.rfile.read(length) if length else b""
        if not mail_send:
            return errors_answer(404, "resource not found")
        refused = fake._authorize(self.headers.get("Authorization") or "")
        if refused is not None:
            return refused
        allowed, limit_headers = fake._admit()
        if not allowed:
            fake._note_429()
            return errors_answer(429, "too many requests", limit_headers)

        mode = fake._take_failure()
        if mode == "429":
            fake._note_429()
            return errors_answer(
                429,
                "too many requests",
                {
                    "X-RateLimit-Limit": str(RATE_LIMIT),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(fake.clock()) + 1),
                },
            )
        if mode in ("500", "503"):
            message = "internal error" if mode == "500" else "service unavailable"
            return errors_answer(int(mode), message)
        if mode == "drop":
            return Answer(0, drop=True)

        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return errors_answer(400, "Bad Request")
        errors = validate_mail_send(payload)
        if errors:
            return Answer(400, {"errors": errors}, limit_headers)

        sandbox = is_sandbox(payload)
        message_id = fake._record(payload, sandbox)
        if mode == "drop_after_accept":
            return Answer(0, drop=True)
        if mode == "slow":
            fake._stopping.wait(fake.slow_delay_s)
        return Answer(200 if sandbox else 202, None, {"X-Message-Id": message_id, **limit_headers})
