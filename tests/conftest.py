"""Test-wide isolation: no settings or secrets leak in from the developer's environment."""

from __future__ import annotations

import os
import tempfile

# Set before Prefect is imported anywhere: a throwaway PREFECT_HOME (results and
# transaction records live there), room for a cold temporary server, no telemetry.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="backorders-prefect-")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)

import pytest


@pytest.fixture(autouse=True)
def _clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BACKORDERS_") or name in ("SENDGRID_API_KEY", "STRIPE_API_KEY"):
            monkeypatch.delenv(name, raising=False)
