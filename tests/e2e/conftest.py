"""One real Prefect API (a temporary server on 127.0.0.1) for the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


# Package scope, not session: the server and Prefect's client workers (events, API
# logs) stop when the e2e tests end. Left running, the events worker's websocket sent
# keepalive pings with a payload from the global `random` (websockets' ping) while
# later property tests generated examples, and Hypothesis warned ("Do not use the
# `random` module inside strategies") on whichever test was running.
@pytest.fixture(scope="package", autouse=True)
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
