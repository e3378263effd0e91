"""A local stand-in for SendGrid's ``POST /v3/mail/send`` and Email Activity, as strict as SendGrid.

Use it in tests (``with FakeSendGrid(api_key="k") as fake: ...``) or as a process::

    python -m backorders.devtools.sendgrid_server --port 0 --key KEY \
        [--rate-limit N] [--rate-limit-headers sendgrid|retry_after|reset_past] \
        [--latency-ms MS] [--forbidden-key KEY ...]

which prints its base URL (e.g. ``http://127.0.0.1:54321``) on the first stdout line and
serves until SIGINT/SIGTERM. Behaviour follows SendGrid's documentation:

- bearer-token auth: 401 ``authorization required`` (no key) or ``The provided
  authorization grant is invalid, expired, or revoked`` (wrong key), 403 ``access
  forbidden`` for a key without the mail.send scope (``forbidden_keys``);
- payload validation (``validation``, ``personalizations``): 400 with ``{"errors": [...]}``
  naming the field (messages modelled on SendGrid's), 413 for a body of 30 MiB or more;
- 202 + ``X-Message-Id`` on success, 200 in sandbox mode (validated, not delivered);
  no idempotency: a request sent twice is delivered twice;
- a request-rate limit (``rate_limit``): 429 ``too many requests`` with SendGrid's
  ``X-RateLimit-*`` headers, or the headers of an independent server (``Retry-After``);
- a latency before every Mail Send answer, per request, concurrent requests side by side;
- what each recipient receives (``rendering``): one shared subject and body per request
  unless a dynamic template renders it, after ``substitutions`` per personalization;
- injected faults (``fail_next``, ``set_failure_rate``): 429, 500, 503, slow, drop,
  drop_after_accept;
- observations for tests and benchmarks: ``messages``, ``deliveries()``,
  ``recipient_deliveries()``, ``received_keys()``, ``accepted_request_times``,
  ``accepted_rate_per_s()``, ``rate_limited_requests``, ``peak_in_flight``.

Dynamic templates: ``template_id`` must be a ``d-`` id (32 lowercase hex digits) or a
legacy template's UUID; ``dynamic_template_data`` must be an object of at most 10,000
bytes (JSON) per personalization; substitutions may not be used with a ``d-`` template;
subject and content are not required with a template. The data is recorded as sent.

Email Activity (``GET /v3/messages?query=...&limit=N``, ``activity``): every accepted,
non-sandbox recipient becomes one message (``msg_id`` = the request's X-Message-Id + a
suffix, as SendGrid's), visible ``activity_lag_s`` after it was accepted (the real feed
lags). The query language is a subset of SendGrid's: ``field = "v"``, ``!=``, ``IN (...)``,
``NOT IN``, ``LIKE '%'``, ``AND``, ``OR`` and parentheses, over ``msg_id``, ``to_email``,
``from_email``, ``subject``, ``status``, ``template_id`` and ``unique_args['name']``.
``activity`` = ``"available"``, ``"no_addon"`` (400 "authorization required", what an
account without the add-on gets), ``"forbidden"`` (403 "access forbidden") or ``"down"``
(500); ``activity_rate_per_min`` answers 429 beyond that many requests a minute (SendGrid
allows 6).
"""

from backorders.devtools.sendgrid_server.activity_query import parse_activity_query
from backorders.devtools.sendgrid_server.limits import ACTIVITY_MODES, FAILURE_MODES
from backorders.devtools.sendgrid_server.rate_limit import RATE_LIMIT_HEADER_MODES
from backorders.devtools.sendgrid_server.server import FakeSendGrid
from backorders.devtools.sendgrid_server.validation import validate_mail_send

__all__ = [
    "ACTIVITY_MODES",
    "FAILURE_MODES",
    "RATE_LIMIT_HEADER_MODES",
    "FakeSendGrid",
    "parse_activity_query",
    "validate_mail_send",
]
