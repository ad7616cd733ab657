"""Closed-loop maximum throughput with Debian's wrk and ``bench/requests.lua``."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, HOST_HEADER

SCRIPT = BENCH_DIR / "requests.lua"
THREADS = 2
CONNECTIONS = 16


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    wrapped: int  # times a thread ran out of lines and started over (0 for a valid sign-in run)
    cpu_seconds: float = 0.0  # the server's CPU over the run (set by the caller, who knows the server)

    @property
    def served(self) -> int:
        """Answers that were 2xx or 3xx: a refusal (a 503 when shed, a 4xx) is not a page or a sign-in served."""
        return self.requests - self.errors.get("status", 0)

    @property
    def rate(self) -> float:
        return self.served / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "served": self.served,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "errors": self.errors,
            "latency_ms": self.latency_ms,
            "wrapped": self.wrapped,
            "cpu_us_per_request": round(1e6 * self.cpu_seconds / self.served, 1) if self.served else None,
        }


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    return path


def wrk_version() -> str:
    result = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).split("Copyright")[0].strip()


def run_wrk(
    port: int, lines_file: Path, seconds: float, *, threads: int = THREADS, connections: int = CONNECTIONS
) -> WrkResult:
    """``wrk -tT -cC -dD`` against 127.0.0.1:port, one line of ``lines_file`` per request."""
    command = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        str(lines_file),
        str(threads),
        HOST_HEADER,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            return WrkResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                errors=data["errors"],
                latency_ms={k: round(v / 1000, 3) for k, v in data["latency_us"].items()},
                wrapped=data["wrapped"],
            )
    raise RuntimeError(f"wrk printed no result (exit {result.returncode}): {result.stderr.strip()[:500]}")
