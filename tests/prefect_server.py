"""A ``prefect server start`` on a free loopback port, for the tests that run flows against a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.cli import api_reachable

SERVER_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrefectServer:
    """A running server: ``env`` points a flow at it (``PREFECT_API_URL``); :meth:`stop` ends it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.api_url = f"http://127.0.0.1:{_free_port()}/api"
        base = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_ENABLED": "false",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        base.pop("PREFECT_API_URL", None)
        self.env = {**base, "PREFECT_API_URL": self.api_url}
        port = self.api_url.rsplit(":", 1)[1].split("/")[0]
        with open(home / "server.log", "w") as log:
            self.process = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start",
                                             "--host", "127.0.0.1", "--port", port],
                                            env=base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not api_reachable(self.api_url, timeout_s=1):
            log = (self.home / "server.log").read_text()[-3000:]
            assert self.process.poll() is None, f"prefect server exited:\n{log}"
            assert time.monotonic() < deadline, f"prefect server not healthy after {SERVER_START_TIMEOUT_S} s"
            time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM the server's own process group (it and its uvicorn), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def prefect_server(home: Path) -> Iterator[PrefectServer]:
    """Start a server with its state in ``home``; yield it once healthy; stop it at the end."""
    server = PrefectServer(home)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()
