"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for take.py.

The plain `chromium --screenshot` cannot click a tab and needs a virtual-time budget
that also skews the Prefect run graph's clock; over the protocol we wait for a text of
the page to appear instead, click tabs by their label and photograph the whole page.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

# the flags this machine needs (/work/.library machines notes): no sandbox as root, no GPU,
# and no background networking (the closed network refuses it, many connections at a time)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--lang=en-GB",  # 24-hour times: the run graph's axis labels then fit between the ticks
)


def chromium_command(binary: str, user_data_dir: Path, width: int, height: int) -> list[str]:
    """The command line of a headless Chromium with a fresh profile and a DevTools port."""
    return [
        binary,
        *FLAGS,
        f"--user-data-dir={user_data_dir}",
        f"--window-size={width},{height}",
        "about:blank",
    ]


def devtools_port(user_data_dir: Path) -> int | None:
    """The DevTools port Chromium wrote into its profile (first line of DevToolsActivePort)."""
    try:
        first = (user_data_dir / "DevToolsActivePort").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


class Page:
    """One browser tab: navigate, wait for text, click, photograph."""

    def __init__(self, ws: ClientConnection, width: int, height: int) -> None:
        self.ws, self.width, self.height = ws, width, height
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        n = next(self._ids)
        self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == n:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        """Open `url` at the default viewport."""
        self.resize(self.height)
        self.call("Page.navigate", url=url)

    def wait_text(self, *texts: str, timeout: float = 60) -> None:
        """Wait until every text shows in the page and no spinner or API error is left."""
        check = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(f"!!document.body && {check or 'true'}"):
                time.sleep(1.5)  # the tables and the run graph draw a moment after the text
                return
            time.sleep(0.5)
        body = self.js("document.body ? document.body.innerText.slice(0, 400) : ''")
        raise TimeoutError(f"the page never showed {texts}: it shows {body!r}")

    def click_text(self, label: str) -> None:
        """Click the first button, link or tab whose own text is exactly `label`."""
        found = self.js(
            "(() => { const el = [...document.querySelectorAll('button, a, [role=tab], li')]"
            f".find(e => e.innerText.trim() === {json.dumps(label)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        if not found:
            raise LookupError(f"nothing to click labelled {label!r}")

    def resize(self, height: int, width: int | None = None) -> None:
        """Set the viewport (the width stays the default unless given)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width or self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def hidden_width(self) -> int:
        """How many pixels the widest sideways-scrolling table or cell hides on the right."""
        return int(
            self.js(
                "Math.max(0, ...[...document.querySelectorAll('table, table *, .p-table, pre')]"
                ".map(e => e.parentElement ? e.parentElement.scrollWidth - "
                "e.parentElement.clientWidth : 0))"
            )
            or 0
        )

    def content_height(self) -> int:
        """The height of the tallest scrolling area (the UI scrolls its main column)."""
        return int(
            self.js(
                "Math.max(document.documentElement.scrollHeight, ...[...document.querySelectorAll"
                "('*')].filter(e => e.scrollHeight > e.clientHeight + 4 && "
                "getComputedStyle(e).overflowY !== 'visible').map(e => e.scrollHeight + "
                "e.getBoundingClientRect().top))"
            )
            or self.height
        )

    def capture(self, path: Path, *, max_height: int | None = None, max_width: int = 2600) -> None:
        """Write a PNG of the page: wide enough that no table scrolls sideways (up to
        `max_width`) and, with `max_height`, as tall as its content."""
        width = self.width
        for _ in range(3):  # a wider window wraps text again: measure once more
            hidden = self.hidden_width()
            if not hidden or width >= max_width:
                break
            width = min(max_width, width + hidden + 40)
            self.resize(self.height, width)
            time.sleep(1.0)
        if max_height:
            self.resize(min(max(self.content_height(), self.height), max_height), width)
            time.sleep(1.0)  # the UI lays out again for the taller window
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.contextmanager
def browser(width: int, height: int, binary: str = "chromium") -> Iterator[Page]:
    """A headless Chromium with an empty profile, and a page of it; removed afterwards."""
    exe = shutil.which(binary)
    if exe is None:
        raise SystemExit(f"{binary} not found: apt-get install -y chromium")
    # ignore_cleanup_errors: a renderer may still write into the profile as it exits
    with tempfile.TemporaryDirectory(
        prefix="ui-shots-chromium-", ignore_cleanup_errors=True
    ) as tmp:
        profile = Path(tmp)
        proc = subprocess.Popen(  # noqa: S603 (a fixed command line)
            chromium_command(exe, profile, width, height),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin", "HOME": tmp},
            start_new_session=True,  # its renderers and helpers end with it (killpg below)
        )
        try:
            deadline = time.monotonic() + 60
            while (port := devtools_port(profile)) is None:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port")
                time.sleep(0.2)
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            with connect(ws_url, max_size=None, open_timeout=30) as ws:
                page = Page(ws, width, height)
                page.call("Page.enable")
                page.call("Emulation.setTimezoneOverride", timezoneId="UTC")
                page.call("Emulation.setLocaleOverride", locale="en-GB")
                yield page
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            time.sleep(0.5)  # the helpers of the group leave the profile
