"""A local stand-in for SendGrid's ``POST /v3/mail/send`` and Email Activity, with faults.

Use it in tests (``with FakeSendGrid(api_key="k") as fake: ...``) or as a process::

    python -m backorders.adapters.sendgrid_fake --port 0 --key KEY

which prints its base URL (e.g. ``http://127.0.0.1:54321``) on the first stdout line and
serves until SIGINT/SIGTERM. Behaviour follows SendGrid's documentation: bearer-token
auth (401), payload shape validation (400 with ``{"errors": [...]}``; messages are
modelled on SendGrid's, wording approximate), 202 + ``X-Message-Id`` on success, 200 in
sandbox mode (as SendGrid documents), 429 with ``X-RateLimit-*`` headers, 500/503.

Dynamic templates: ``template_id`` must be a ``d-`` id (32 lowercase hex digits) or a
legacy template's UUID; ``dynamic_template_data`` must be an object of at most 10,000
bytes (JSON) per personalization; substitutions may not be used with a ``d-`` template;
subject and content are not required with a template. The data is recorded as sent.

Email Activity (``GET /v3/messages?query=...&limit=N``): every accepted, non-sandbox
personalization becomes one message (``msg_id`` = the request's X-Message-Id + a suffix,
as SendGrid's), visible ``activity_lag_s`` after it was accepted (the real feed lags).
The query language is a subset of SendGrid's: ``field = "v"``, ``!=``, ``IN (...)``,
``NOT IN``, ``LIKE '%'``, ``AND``, ``OR`` and parentheses, over ``msg_id``, ``to_email``,
``from_email``, ``subject``, ``status``, ``template_id`` and ``unique_args['name']``.
``activity`` = ``"available"``, ``"no_addon"`` (400 "authorization required", what an
account without the add-on gets), ``"forbidden"`` (403 "access forbidden") or ``"down"``
(500); ``activity_rate_per_min`` answers 429 beyond that many requests a minute (SendGrid
allows 6).
"""

from __future__ import annotations

import argparse
import collections
import hmac
import json
import random
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

__all__ = ["ACTIVITY_MODES", "FAILURE_MODES", "FakeSendGrid", "validate_mail_send"]

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

_DYNAMIC_TEMPLATE_RE = re.compile(r"^d-[0-9a-f]{32}$")
_LEGACY_TEMPLATE_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_ADDRESS_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]{2,}$")


def _error(message: str, field: str | None = None) -> dict[str, Any]:
    """One SendGrid-style error object."""
    return {"message": message, "field": field, "help": None}


def _non_empty_str(value: object) -> bool:
    """True for a string with at least one character."""
    return isinstance(value, str) and len(value) > 0


def _valid_address_obj(value: object) -> bool:
    """True for ``{"email": "<plausible address>", ["name": str]}``."""
    if not isinstance(value, dict):
        return False
    email = value.get("email")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        return False
    return isinstance(email, str) and bool(_ADDRESS_RE.match(email))


def _validate_personalizations(payload: dict[str, Any], errors: list[dict[str, Any]]) -> None:
    """Validate the personalizations block (recipients, uniqueness, limits, template data)."""
    template_id = payload.get("template_id")
    dynamic = isinstance(template_id, str) and template_id.startswith("d-")
    pers = payload.get("personalizations")
    if not isinstance(pers, list) or not pers:
        errors.append(
            _error(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        return
    if len(pers) > MAX_PERSONALIZATIONS:
        errors.append(
            _error(
                f"The personalizations field must have no more than {MAX_PERSONALIZATIONS} items.",
                "personalizations",
            )
        )
        return
    total = 0
    limit_sub = MAX_SUBSTITUTIONS_BYTES
    for i, p in enumerate(pers):
        if not isinstance(p, dict):
            errors.append(_error("Personalization must be an object.", f"personalizations.{i}"))
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    "The to array is required for all personalization objects, and must "
                    "have at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            )
            continue
        seen: set[str] = set()
        for kind in ("to", "cc", "bcc"):
            group = p.get(kind, [])
            if not isinstance(group, list):
                errors.append(
                    _error(f"The {kind} field must be an array.", f"personalizations.{i}.{kind}")
                )
                continue
            for j, rcpt in enumerate(group):
                total += 1
                if not _valid_address_obj(rcpt):
                    errors.append(
                        _error(
                            "Does not contain a valid address.",
                            f"personalizations.{i}.{kind}.{j}.email",
                        )
                    )
                    continue
                addr = str(rcpt["email"]).lower()
                if addr in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be "
                            "unique between to, cc, and bcc.",
                            f"personalizations.{i}.{kind}.{j}.email",
                        )
                    )
                seen.add(addr)
        if "subject" in p and not isinstance(p["subject"], str):
            errors.append(_error("The subject must be a string.", f"personalizations.{i}.subject"))
        elif isinstance(p.get("subject"), str) and ("\r" in p["subject"] or "\n" in p["subject"]):
            errors.append(
                _error("The subject may not contain line breaks.", f"personalizations.{i}.subject")
            )
        data = p.get("dynamic_template_data")
        if data is not None and not isinstance(data, dict):
            errors.append(
                _error(
                    "The dynamic_template_data must be an object.",
                    f"personalizations.{i}.dynamic_template_data",
                )
            )
        elif data is not None and len(json.dumps(data).encode()) > MAX_TEMPLATE_DATA_BYTES:
            errors.append(
                _error(
                    f"The total size of dynamic_template_data may not exceed "
                    f"{MAX_TEMPLATE_DATA_BYTES} bytes per personalization.",
                    f"personalizations.{i}.dynamic_template_data",
                )
            )
        if dynamic and p.get("substitutions") is not None:
            errors.append(
                _error(
                    "Substitutions may not be used with dynamic templating",
                    f"personalizations.{i}.substitutions",
                )
            )
        for field, limit in (("custom_args", MAX_CUSTOM_ARGS_BYTES), ("substitutions", limit_sub)):
            block = p.get(field)
            if block is None:
                continue
            if not isinstance(block, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in block.items()
            ):
                errors.append(
                    _error(
                        f"The {field} must be an object of string values.",
                        f"personalizations.{i}.{field}",
                    )
                )
            elif sum(len(k.encode()) + len(v.encode()) for k, v in block.items()) > limit:
                errors.append(
                    _error(
                        f"The total size of {field} may not exceed {limit} bytes per "
                        "personalization.",
                        f"personalizations.{i}.{field}",
                    )
                )
    if total > MAX_RECIPIENTS:
        errors.append(
            _error(
                f"The total number of recipients must be no more than {MAX_RECIPIENTS}.",
                "personalizations",
            )
        )


def validate_mail_send(payload: object) -> list[dict[str, Any]]:
    """Return SendGrid-style error objects for a Mail Send body ([] when valid)."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    _validate_personalizations(payload, errors)

    if not _valid_address_obj(payload.get("from")):
        errors.append(
            _error(
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )

    template_id = payload.get("template_id")
    has_template = _non_empty_str(template_id)
    if template_id is not None and not (
        isinstance(template_id, str)
        and (_DYNAMIC_TEMPLATE_RE.match(template_id) or _LEGACY_TEMPLATE_RE.match(template_id))
    ):
        has_template = False
        errors.append(
            _error(
                "The template_id must be a valid template ID: a dynamic template's "
                "d-<32 hex digits>, or a legacy template's UUID.",
                "template_id",
            )
        )
    pers = payload.get("personalizations")
    all_pers_have_subject = (
        isinstance(pers, list)
        and bool(pers)
        and all(isinstance(p, dict) and _non_empty_str(p.get("subject")) for p in pers)
    )
    if (
        not has_template
        and not _non_empty_str(payload.get("subject"))
        and not all_pers_have_subject
    ):
        errors.append(
            _error(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )

    content = payload.get("content")
    if content is None and has_template:
        pass
    elif not isinstance(content, list) or not content:
        errors.append(
            _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is "
                "required.",
                "content",
            )
        )
    else:
        for k, block in enumerate(content):
            if not isinstance(block, dict) or not _non_empty_str(block.get("type")):
                errors.append(
                    _error(
                        "The content type must be a string at least one character in length.",
                        f"content.{k}.type",
                    )
                )
                continue
            if not _non_empty_str(block.get("value")):
                errors.append(
                    _error(
                        "The content value must be a string at least one character in length.",
                        f"content.{k}.value",
                    )
                )
            if block.get("type") == "text/plain" and k != 0:
                errors.append(
                    _error(
                        "If present, text/plain must be first, followed by text/html, "
                        "followed by any other content.",
                        f"content.{k}.type",
                    )
                )

    custom_args = payload.get("custom_args")
    if custom_args is not None and (
        not isinstance(custom_args, dict)
        or not all(isinstance(v, str) for v in custom_args.values())
    ):
        errors.append(_error("Custom args must be an object of string values.", "custom_args"))
    elif custom_args is not None and (
        sum(len(k.encode()) + len(v.encode()) for k, v in custom_args.items())
        > MAX_CUSTOM_ARGS_BYTES
    ):
        errors.append(
            _error(
                f"The total size of custom_args may not exceed {MAX_CUSTOM_ARGS_BYTES} bytes.",
                "custom_args",
            )
        )

    categories = payload.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(
            _non_empty_str(c) and len(c) <= 255 for c in categories
        ):
            errors.append(
                _error("Categories must be strings of 1 to 255 characters.", "categories")
            )
        elif len(categories) > MAX_CATEGORIES:
            errors.append(
                _error(
                    f"You may not include more than {MAX_CATEGORIES} categories per email.",
                    "categories",
                )
            )

    mail_settings = payload.get("mail_settings")
    if isinstance(mail_settings, dict) and isinstance(mail_settings.get("sandbox_mode"), dict):
        enable = mail_settings["sandbox_mode"].get("enable")
        if not isinstance(enable, bool):
            errors.append(
                _error(
                    "The sandbox mode enable param should be a boolean value.",
                    "mail_settings.sandbox_mode.enable",
                )
            )
    return errors


# -- Email Activity query language (a subset of SendGrid's) ----------------------------------

_ACTIVITY_FIELDS = frozenset(
    {"msg_id", "to_email", "from_email", "subject", "status", "template_id"}
)
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<arg>unique_args\[(?:'(?P<a1>[^']*)'|"(?P<a2>[^"]*)")\])
      | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
      | "(?P<dq>(?:\\.|[^"\\])*)"
      | '(?P<sq>(?:\\.|[^'\\])*)'
      | \u201c(?P<cq>[^\u201d]*)\u201d
      | (?P<op>!=|=|\(|\)|,)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"AND", "OR", "IN", "NOT", "LIKE"})

Predicate = Callable[[dict[str, Any]], bool]


def _tokens(query: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: arg, field, kw, str, op."""
    out: list[tuple[str, str]] = []
    pos = 0
    query = query.rstrip()
    while pos < len(query):
        m = _TOKEN_RE.match(query, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid syntax near {query[pos : pos + 20]!r}")
        pos = m.end()
        if m.group("arg") is not None:
            out.append(("arg", m.group("a1") if m.group("a1") is not None else m.group("a2")))
        elif m.group("word") is not None:
            word = m.group("word")
            if word.upper() in _KEYWORDS:
                out.append(("kw", word.upper()))
            elif word in _ACTIVITY_FIELDS:
                out.append(("field", word))
            else:
                raise ValueError(f"invalid syntax: '{word}' is not a known field")
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            raw = next(g for g in (m.group("dq"), m.group("sq"), m.group("cq")) if g is not None)
            out.append(("str", re.sub(r"\\(.)", r"\1", raw)))
    return out


class _QueryParser:
    """Recursive descent over the tokens: OR of ANDs of comparisons (or parentheses)."""

    def __init__(self, query: str) -> None:
        self.toks = _tokens(query)
        self.i = 0

    def parse(self) -> Predicate:
        if not self.toks:
            raise ValueError("invalid syntax: empty query")
        pred = self._or()
        if self.i != len(self.toks):
            raise ValueError(f"invalid syntax: unexpected {self.toks[self.i][1]!r}")
        return pred

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self, kind: str, text: str | None = None) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind or (text is not None and tok[1] != text):
            want = text or kind
            raise ValueError(f"invalid syntax: expected {want}, got {tok[1] if tok else 'end'!r}")
        self.i += 1
        return tok[1]

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == ("kw", "OR"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda m: any(p(m) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._peek() == ("kw", "AND"):
            self.i += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else lambda m: all(p(m) for p in parts)

    def _atom(self) -> Predicate:
        tok = self._peek()
        if tok == ("op", "("):
            self.i += 1
            inner = self._or()
            self._take("op", ")")
            return inner
        if tok is not None and tok[0] == "arg":
            self.i += 1
            name = tok[1]

            def arg_value(m: dict[str, Any]) -> str | None:
                value = m["unique_args"].get(name)
                return None if value is None else str(value)

            getter: Callable[[dict[str, Any]], str | None] = arg_value
        elif tok is not None and tok[0] == "field":
            self.i += 1
            fname = tok[1]

            def field_value(m: dict[str, Any]) -> str | None:
                value = m.get(fname)
                return None if value is None else str(value)

            getter = field_value
        else:
            raise ValueError(f"invalid syntax: expected a field, got {tok[1] if tok else 'end'!r}")
        negate = False
        if self._peek() == ("kw", "NOT"):
            self.i += 1
            negate = True
        op = self._peek()
        if op == ("op", "=") and not negate:
            self.i += 1
            want = self._take("str")
            return lambda m: getter(m) == want
        if op == ("op", "!=") and not negate:
            self.i += 1
            want = self._take("str")
            return lambda m: getter(m) != want
        if op == ("kw", "IN"):
            self.i += 1
            self._take("op", "(")
            values = {self._take("str")}
            while self._peek() == ("op", ","):
                self.i += 1
                values.add(self._take("str"))
            self._take("op", ")")
            return lambda m: (getter(m) in values) != negate
        if op == ("kw", "LIKE"):
            self.i += 1
            pattern = self._take("str")
            rx = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
                re.DOTALL,
            )
            return lambda m: (rx.fullmatch(getter(m) or "") is not None) != negate
        raise ValueError(f"invalid syntax: unsupported operator {op[1] if op else 'end'!r}")


def parse_activity_query(query: str) -> Predicate:
    """A predicate over activity messages for a query, or ValueError (-> 400)."""
    return _QueryParser(query).parse()


def _is_sandbox(payload: dict[str, Any]) -> bool:
    """True if ``mail_settings.sandbox_mode.enable`` is the boolean ``true``."""
    settings = payload.get("mail_settings")
    if not isinstance(settings, dict):
        return False
    sandbox = settings.get("sandbox_mode")
    return isinstance(sandbox, dict) and sandbox.get("enable") is True


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its FakeSendGrid."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # default 5 overflows under concurrent clients (1 s SYN retry)

    def __init__(self, address: tuple[str, int], fake: FakeSendGrid) -> None:
        """Bind to ``address`` and remember ``fake``."""
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Request handler implementing ``POST /v3/mail/send``."""

    server: _Server
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

        sandbox = _is_sandbox(payload)
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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeSendGrid:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("FakeSendGrid already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake as a standalone process; print its URL and serve until signalled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", required=True, help="API key the fake accepts")
    parser.add_argument("--slow-delay", type=float, default=1.0, help="seconds for 'slow'")
    parser.add_argument(
        "--activity", choices=sorted(ACTIVITY_MODES), default="available", help="Email Activity"
    )
    parser.add_argument("--activity-lag", type=float, default=0.0, help="feed lag, seconds")
    args = parser.parse_args(argv)

    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with FakeSendGrid(
        api_key=args.key,
        host=args.host,
        port=args.port,
        slow_delay_s=args.slow_delay,
        activity=args.activity,
        activity_lag_s=args.activity_lag,
    ) as fake:
        print(fake.url, flush=True)
        while not done.wait(0.5):
            pass
        print(f"accepted {len(fake.messages)} message(s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
