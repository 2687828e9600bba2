"""A small Chrome DevTools Protocol client: Debian's `chromium`, headless, driven over its websocket.

No browser download and no Selenium: `Browser.start()` runs the installed chromium with a throwaway profile, reads the
DevTools address it prints, and attaches to its first page. `evaluate` reads the DOM, `wait_for` polls a JavaScript
condition (generous timeouts: the assertion is the condition, never a fixed sleep), `screenshot` saves a PNG.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CANDIDATES = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, executable: str, *, width: int = 1400, height: int = 1000) -> None:
        self.executable = executable
        self.size = (width, height)
        self.profile = Path(tempfile.mkdtemp(prefix="semcoder-chromium-"))
        self.process: subprocess.Popen[str] | None = None
        self.ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self._ids = itertools.count(1)

    def start(self, timeout_s: float = 60) -> Browser:
        width, height = self.size
        self.process = subprocess.Popen(
            [self.executable, "--headless=new", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        port = self._devtools_port(timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
                     if t.get("type") == "page"]
            if pages:
                break
            if time.monotonic() > deadline:
                raise CdpError("chromium opened no page")
            time.sleep(0.2)
        self.ws = self._stack.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=timeout_s))
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        return self

    def _devtools_port(self, timeout_s: float) -> int:
        assert self.process is not None and self.process.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(line)
            if match := re.search(r"DevTools listening on ws://[^:/]+:(\d+)/", line):
                # keep draining stderr so a chatty browser never blocks on a full pipe
                _drain(self.process.stderr)
                return int(match.group(1))
        self.close()
        raise CdpError("chromium did not print its DevTools address:\n" + "".join(seen[-40:]))

    def call(self, method: str, timeout_s: float = 60, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"{method}: no answer in {timeout_s}s")
            message = json.loads(self.ws.recv(timeout=left))
            if message.get("id") != call_id:
                continue  # an event
            if "error" in message:
                raise CdpError(f"{method}: {message['error']}")
            return message.get("result", {})

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(f"{expression!r} threw: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 120, what: str = "") -> Any:
        """Polls `expression` until it is truthy; its value. On timeout, fails with what the page shows."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except CdpError:
                value = None  # the page is between documents
            if value:
                return value
            if time.monotonic() > deadline:
                shown = self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise AssertionError(f"waited {timeout_s}s for {what or expression}; the page shows:\n{shown}")
            time.sleep(0.2)

    def screenshot(self, path: Path) -> Path:
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = max(int(size["width"]), self.size[0]), min(max(int(size["height"]), 200), 16000)
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self._stack.close()
        self.ws = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def _drain(stream: Any) -> None:
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
