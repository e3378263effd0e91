"""`backorders demo` sends its captures to the local Stripe server and flags expiries."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests import cli_process

# the whole demo a second time (30 s): in the slow suite, which CI runs
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_sends_captures_to_the_local_stripe_server_and_flags_expiries(
    tmp_path: Path,
) -> None:
    """A whole demo as a process: captures carried out locally, some orders to reauthorize.

    The environment holds a Stripe key and a SendGrid key pointed at a closed port: the
    demo must use neither (its payments go to its own local server, its emails nowhere).
    """
    # Arrange
    env = cli_process.clean_env(
        tmp_path / "prefect",
        STRIPE_API_KEY="sk_test_ambient_000000000000000000",
        BACKORDERS_STRIPE_API_BASE="http://127.0.0.1:9",
        SENDGRID_API_KEY="SG.ambient.000000000000000000",
        BACKORDERS_SENDGRID_HOST="http://127.0.0.1:9",
        BACKORDERS_FROM_EMAIL="care@example.com",
    )

    # Act
    done = cli_process.run(["demo", "--dir", str(tmp_path / "demo")], env, timeout=400)

    # Assert: the headline, what the local server carried out, and the expiries
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    payments = re.search(r"^payments +(\d+) capture\(s\) queued.*; (\d+) done$", out, re.M)
    assert payments and int(payments[1]) >= 1 and int(payments[2]) >= int(payments[1]), out
    local = re.search(r"^local Stripe server +(\d+) capture\(s\) carried out", out, re.M)
    assert local and int(local[1]) == int(payments[1]), out
    assert re.search(r"^  to reauthorize +[1-9]\d* order\(s\)", out, re.M), out
    assert "none sent" in next(ln for ln in out.splitlines() if ln.startswith("emails"))
    with duckdb.connect(str(tmp_path / "demo" / "backorders.duckdb"), read_only=True) as con:
        captured = con.execute(
            "select count(*) from payment_requests where kind = 'capture' "
            "and status = 'succeeded' and not preview"
        ).fetchone()
        lapsed = con.execute(
            "select order_id from order_authorizations "
            "where payment_expires_at < timestamptz '2026-11-23 06:00:00+00' order by all limit 1"
        ).fetchone()
    assert captured == (int(payments[1]),)
    assert lapsed is not None
    status = cli_process.run(
        ["status", lapsed[0], "--db", str(tmp_path / "demo" / "backorders.duckdb")], env
    )
    assert "authorization expired" in status.stdout, status.stdout + status.stderr
