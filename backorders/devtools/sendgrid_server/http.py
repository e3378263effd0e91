"""The HTTP side of the local SendGrid server: a threaded server and its request handler."""

from __future__ import annotations

import hmac
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from backorders.devtools.sendgrid_server.limits import MAX_BODY_BYTES, RATE_LIMIT
from backorders.devtools.sendgrid_server.limits import error as _error
from backorders.devtools.sendgrid_server.validation import is_sandbox, validate_mail_send

if TYPE_CHECKING:
    from backorders.devtools.sendgrid_server.server import FakeSendGrid


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

    def _drop(self) -> None:
        """Close the connection without writing any response."""
        self.close_connection = True

    def do_GET(self) -> None:
        """Email Activity: ``GET /v3/messages?query=...&limit=N``; anything else 404/405."""
        fake = self.server.fake
        path, _, raw_query = self.path.partition("?")
        if path.rstrip("/") != "/v3/messages":
            if path.rstrip("/") == "/v3/mail/send":
                self._errors(405, [_error("method not allowed")])
            else:
                self._errors(404, [_error("resource not found")])
            return
        auth = self.headers.get("Authorization") or ""
        if not auth or not hmac.compare_digest(auth.encode(), f"Bearer {fake.api_key}".encode()):
            self._errors(401, [_error("authorization required")])
            return
        status, body, headers = fake._activity_answer(urllib.parse.parse_qs(raw_query))
        self._send_json(status, body, headers)

    def do_PUT(self) -> None:
        """Not served."""
        self._errors(405, [_error("method not allowed")])

    do_DELETE = do_PATCH = do_PUT

    def do_POST(self) -> None:
        """Handle one Mail Send request, applying any injected failure."""
        fake = self.server.fake
        fake._note_request()
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._errors(400, [_error("Bad Request")])
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._errors(413, [_error("Payload Too Large")])
            return
        # Always drain the body before answering, or closing with unread data may reset
        # the connection and the client would never see our status line.
        raw = self.rfile.read(length) if length else b""

        if self.path.split("?", 1)[0].rstrip("/") != "/v3/mail/send":
            self._errors(404, [_error("resource not found")])
            return
        auth = self.headers.get("Authorization") or ""
        expected = f"Bearer {fake.api_key}"
        if not auth:
            self._errors(401, [_error("authorization required")])
            return
        if not hmac.compare_digest(auth.encode(), expected.encode()):
            self._errors(
                401, [_error("The provided authorization grant is invalid, expired, or revoked")]
            )
            return

        mode = fake._take_failure()
        if mode == "429":
            self._send_json(
                429,
                {"errors": [_error("too many requests")]},
                {
                    "X-RateLimit-Limit": str(RATE_LIMIT),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(fake.clock()) + 1),
                },
            )
            return
        if mode in ("500", "503"):
            message = "internal error" if mode == "500" else "service unavailable"
            self._errors(int(mode), [_error(message)])
            return
        if mode == "drop":
            self._drop()
            return

        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._errors(400, [_error("Bad Request")])
            return
        errors = validate_mail_send(payload)
        if errors:
            self._errors(400, errors)
            return

        sandbox = is_sandbox(payload)
        message_id = fake._record(payload, sandbox)
        if mode == "drop_after_accept":
            self._drop()
            return
        if mode == "slow":
            fake._stopping.wait(fake.slow_delay_s)
        try:
            self._send_json(200 if sandbox else 202, None, {"X-Message-Id": message_id})
        except OSError:  # the client gave up (timeout) and closed its end
            self.close_connection = True
