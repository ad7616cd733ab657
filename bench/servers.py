"""Start, watch and stop the servers under test: billportal and the bare reference.

Both run as ``billportal serve`` runs in production: one uvicorn worker in the
process we start (so its pid is the worker's), on 127.0.0.1 and a free port.
The reference goes through the very same ``billportal.server.serve`` (see
``bench/reference_app.py``), so the two differ in the app only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from bench.common import HOST_HEADER, PYTHON, ROOT, VAR, free_port

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def server_env(data_dir: Path, *, access_log: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server under test: only the settings we choose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLPORTAL_", "BENCH_"))}
    env.update(
        {
            "BILLPORTAL_DATA_DIR": str(data_dir),
            "BILLPORTAL_BASE_DOMAIN": "localhost",
            "BILLPORTAL_ACCESS_LOG": "1" if access_log else "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra or {})
    return env


def copy_dataset(source: Path, name: str) -> Path:
    """A throwaway copy of a cached database folder for one server's runs."""
    target = VAR / "run" / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for item in ("billportal.sqlite3", "master.key"):
        shutil.copy2(source / item, target / item)
    os.sync()  # the copy on disk now: its writeback is not charged to the server that runs on it
    return target


@dataclass
class Server:
    """One server process under test."""

    kind: str  # "billportal" or "reference"
    data_dir: Path
    access_log: bool
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0
    first_answer_seconds: float = 0.0  # from exec to the first answer, of the last start

    def command(self) -> list[str]:
        if self.kind == "billportal":
            serve = [PYTHON, "-m", "billportal", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            return serve + (["--workers", str(self.workers)] if self.workers > 1 else [])
        return [PYTHON, "-m", "bench.reference_app", "--host", "127.0.0.1", "--port", str(self.port)]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Server:
        """Start (or restart, on the same port and data) and wait until it answers HTTP."""
        if not self.port:
            self.port = free_port()
        self.starts += 1
        logs = VAR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{self.data_dir.name}-{self.kind}-{self.starts}.log"
        with self.log_path.open("wb") as log:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=server_env(self.data_dir, access_log=self.access_log, extra=self.extra_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        self.first_answer_seconds = time.perf_counter() - started
        self._check_identity()
        return self

    def _check_identity(self) -> None:
        """That the app answering is the one meant: a reference that served billportal's own app would
        measure billportal against itself (it once did, unnoticed, for a day of runs)."""
        answer = httpx.get(f"http://127.0.0.1:{self.port}/signed-out", headers={"Host": HOST_HEADER})
        is_reference = answer.headers.get("content-type", "").startswith("text/plain") and answer.text == "Signed out"
        if is_reference != (self.kind == "reference"):
            self.stop()
            raise RuntimeError(f"the {self.kind} server answers as the other app does; see {self.log_path}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        request = f"GET /signed-out HTTP/1.1\r\nHost: {HOST_HEADER}\r\nConnection: close\r\n\r\n".encode()
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.kind} server exited at start; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(request)
                    if sock.recv(16).startswith(b"HTTP/1.1 "):
                        return
            except OSError:
                pass
            time.sleep(0.005)  # fine: start-up is measured to its first answer
        self.stop()
        raise RuntimeError(f"the {self.kind} server did not answer within {READY_TIMEOUT:.0f} s")

    def _status_mb(self, field: str) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc/PID/status")

    def cpu_seconds(self) -> float:
        """User and system CPU the server's processes (it and its workers) have used so far."""
        ticks = 0
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
            except OSError:
                continue  # gone in between
            ticks += int(fields[11]) + int(fields[12])
            pending += [int(child) for child in children]
        return ticks / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """VmHWM of the worker: the most resident memory it has held since it started."""
        return self._status_mb("VmHWM")

    def rss_mb(self) -> float:
        """VmRSS of the worker now."""
        return self._status_mb("VmRSS")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush, no goodbye."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
