"""A local stand-in for Stripe's PaymentIntents API, as strict as Stripe (tests and demo).

In tests: ``with FakeStripe(api_key="sk_test_local") as fake: fake.add_intent(...)``. As a
process::

    python -m backorders.devtools.stripe_server --port 0 --key sk_test_local \
        [--latency-ms MS] [--rate-limit N] [--intents FILE.json]

prints its base URL on the first stdout line and serves until SIGINT/SIGTERM, then prints
what it carried out on stderr. ``--intents`` seeds authorized PaymentIntents from a JSON
list of ``{"id", "amount", "currency", "capture_before" (epoch s), "multicapture"}``.
What it enforces: ``ledger`` (amounts, states, idempotency) and ``server`` (401, 429,
latency, faults); docs/payments.md lists it.
"""

from backorders.devtools.stripe_server.ledger import Intent, Ledger, stripe_error
from backorders.devtools.stripe_server.server import FAULTS, FakeStripe

__all__ = ["FAULTS", "FakeStripe", "Intent", "Ledger", "stripe_error"]
