"""Headless Chromium for the page tests: find the binary, take a screenshot, and drive a page over the DevTools
protocol (websockets, already pinned in constraints.txt). Chromium comes from Debian's packages:
``apt-get install -y --no-install-recommends chromium``; tests skip with that line where it is absent."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--hide-scrollbars", "--mute-audio"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2000, timeout: float = 60.0) -> None:
    """Render ``html`` to ``png`` (a full window of ``width`` × ``height``)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([find_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={png}", "--virtual-time-budget=2000", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=timeout)


class Page:
    """One headless tab: ``with Page() as page: page.open(url); page.eval("1 + 1")``; JavaScript exceptions and
    console errors collect in ``page.errors``."""

    def __init__(self, timeout: float = 30.0):
        self.timeout, self.errors, self._ids = timeout, [], itertools.count(1)

    def __enter__(self) -> Page:
        from websockets.sync.client import connect

        self._profile = tempfile.TemporaryDirectory()
        self._proc = subprocess.Popen([find_chromium(), *FLAGS, "--remote-debugging-port=0",
                                       f"--user-data-dir={self._profile.name}", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.time() + self.timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.time() > deadline or self._proc.poll() is not None:
                self.__exit__(None, None, None)
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout))
        page = next(t for t in targets if t["type"] == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=self.timeout)
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(self, *exc) -> None:
        if getattr(self, "_ws", None) is not None:
            self._ws.close()
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._profile.cleanup()

    def _event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error" \
                and "videos/" not in params["entry"].get("url", ""):   # fixture videos are not real mp4s
            self.errors.append(params["entry"]["text"])

    def call(self, method: str, wait_event: str | None = None, **params) -> dict:
        """Send one command; return its result (after ``wait_event`` arrives too, if given)."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        result, seen = None, wait_event is None
        while result is None or not seen:
            message = json.loads(self._ws.recv(timeout=self.timeout))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result = message["result"]
            elif message.get("method") == wait_event:
                seen = True
            self._event(message)
        return result

    def open(self, url: str) -> None:
        self.call("Page.navigate", wait_event="Page.loadEventFired", url=url)

    def eval(self, expression: str):
        """The value of a JavaScript expression (promises awaited)."""
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(out["exceptionDetails"].get("exception", {}).get("description", str(out)))
        return out["result"].get("value")
