"""One ``billportal serve`` process, for tests that need a real server: real sockets, signals, restarts."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class App:
    """One ``billportal serve`` process."""

    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    workers: int = 1
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15, follow_redirects=False))

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "billportal", "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("billportal serve did not start:\n" + self.log.read_text(errors="replace"))
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None

    def get(
        self, path: str, *, cookie: str | None = None, host: str = "acme", client_ip: str | None = None
    ) -> httpx.Response:
        headers = {"host": f"{host}.localhost:{self.port}"}
        if client_ip:
            headers["x-forwarded-for"] = client_ip  # believed: the fleet trusts 127.0.0.1 as its proxy
        if cookie:
            headers["cookie"] = f"__Host-bp_session={cookie}"
        return self.client.get(f"http://127.0.0.1:{self.port}{path}", headers=headers)
