"""The demo's Stripe: the local Stripe server holding the demo's authorizations, at its clock.

`backorders demo` runs at a fixed as-of (DemoSpec.as_of, 2026-11-23), so its card
authorizations (7 days from each order's placing) lie in the past of the wall clock by
which Stripe and the send pass judge expiry. Here the local server and the send pass
(`payment_clock = as_of`) judge them at the demo's as-of, running on from when the demo
starts: the captures the allocation deserves go out and are carried out, the ones that
lapsed before the as-of are never queued, and no real Stripe is ever asked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from backorders.devtools.stripe_server import FakeStripe

# the settings the demo's cycle reads from the environment while the local server serves:
# payments to it, at the demo's clock; emails recorded, never sent (no SendGrid key)
_EMAIL_KEYS = (
    "SENDGRID_API_KEY",
    "BACKORDERS_SENDGRID_API_KEY",
    "BACKORDERS_SENDGRID_SECRET_BLOCK",
)


@contextlib.contextmanager
def local_stripe(
    as_of: datetime, authorizations: Sequence[tuple[str, int, str, int]]
) -> Iterator[FakeStripe]:
    """Serve the demo's authorizations at the demo's clock; point this process's settings at it.

    `authorizations`: (payment_ref, amount in the smallest unit, currency, expires_at epoch
    seconds), as DemoManifest lists them. The environment is restored on leaving.
    """
    started = time.time()
    fake = FakeStripe(
        api_key=f"sk_test_demo_{secrets.token_hex(12)}",
        clock=lambda: as_of.timestamp() + (time.time() - started),
    )
    for ref, amount, currency, expires_at in authorizations:
        fake.add_intent(ref, amount, currency, capture_before=expires_at)
    with fake:  # started: its port is known
        env = {
            "STRIPE_API_KEY": fake.api_key,
            "BACKORDERS_STRIPE_API_BASE": fake.url,
            "BACKORDERS_PAYMENT_CLOCK": "as_of",
            **dict.fromkeys(_EMAIL_KEYS, ""),
        }
        with _environment(env):
            _check_settings(fake.url)
            yield fake


def headline(fake: FakeStripe) -> str:
    """What the local server carried out, in one line (the demo prints it)."""
    caps = fake.captures()
    # a release: a cancel, or a final capture of 0 after a partial multicapture
    cancels = sum(e["action"] in ("cancel", "release") for e in fake.ledger.executed)
    return (
        f"{sum(len(v) for v in caps.values())} capture(s) carried out on {len(caps)} "
        f"PaymentIntent(s), {cancels} canceled (released), {fake.ledger.replayed} idempotent "
        "replay(s)"
    )


def _check_settings(url: str) -> None:
    """Refuse to run the demo unless its settings now send payments here and no email."""
    from backorders.settings import load_settings

    s = load_settings()
    if s.sending_enabled or s.stripe_api_base != url or s.payment_clock != "as_of":
        raise RuntimeError(
            "the demo cannot point its settings at the local Stripe server and away from "
            "SendGrid (a settings file overrides the environment?): run it without one"
        )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set for the block, the earlier values restored after."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
