"""py-spy profiles of a server under load, and a summary fit for docs/benchmarks.md.

``py-spy record --pid PID --format speedscope`` samples the worker (100 Hz,
without pausing it) while a load runs; the speedscope file is kept under
var/bench/profiles/ (open it at speedscope.app) and summarised here: the
functions where the samples sat (self time) and the ones that were on the stack
(total time), as a share of all samples.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, VAR

PROFILES = VAR / "profiles"


def py_spy() -> str | None:
    local = Path(ROOT / ".venv" / "bin" / "py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    samples: float  # seconds of samples counted (py-spy weighs each sample by its interval)
    idle_included: bool  # recorded with --idle: waits (I/O, the event loop's epoll) are samples too
    loop_share: float  # samples whose innermost Python frame is the event loop (uvloop's C code, or idle)
    self_top: list[tuple[str, float]]  # (function, share of samples), self time
    hot_lines: list[tuple[str, float]]  # (function and line, share of samples), self time
    by_file: list[tuple[str, float]]  # (source file, share of samples), self time
    inclusive: list[tuple[str, float]]  # billportal's functions (no middleware wrappers), share on the stack

    def as_dict(self) -> dict[str, Any]:
        def pairs(items: list[tuple[str, float]]) -> list[list[Any]]:
            return [[label, round(share, 4)] for label, share in items]

        return {
            "name": self.name,
            "path": str(self.path.relative_to(ROOT)),
            "samples_seconds": round(self.samples, 2),
            "idle_included": self.idle_included,
            "loop_share": round(self.loop_share, 4),
            "self_top": pairs(self.self_top),
            "hot_lines": pairs(self.hot_lines),
            "by_file": pairs(self.by_file),
            "inclusive": pairs(self.inclusive),
        }


def _short_file(file: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


_ENTRY = {"<module>", "main", "serve", "run_serve", "_run_module_as_main", "_run_code", "asyncio_run"}


def _wrapper(name: str) -> bool:
    """Middleware layers that every request passes through: on every stack, they say nothing."""
    return name.endswith("__call__") or "<locals>" in name or name in _ENTRY


def summarise(name: str, path: Path, *, idle_included: bool = False, within: str = "", top: int = 15) -> Profile:
    """Shares of the samples; ``within`` keeps only samples with that function on the stack."""
    data = json.loads(path.read_text(encoding="utf-8"))
    shared = data["shared"]["frames"]
    files = [_short_file(str(f.get("file", ""))) for f in shared]
    names = [str(f.get("name", "?")) for f in shared]
    functions = [f"{n} ({f})" for n, f in zip(names, files, strict=True)]
    lines = [f"{n} ({f}:{frame.get('line', '?')})" for n, f, frame in zip(names, files, shared, strict=True)]
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in ("self", "line", "file", "inclusive")}
    total = loop = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack or (within and not any(names[i] == within for i in stack)):
                continue
            total += weight
            leaf = stack[-1]
            if names[leaf].endswith("run") and files[leaf].startswith("asyncio/runners"):
                loop += weight
            counts["self"][functions[leaf]] += weight
            counts["line"][lines[leaf]] += weight
            counts["file"][files[leaf]] += weight
            for label in {functions[i] for i in stack if files[i].startswith("billportal/") and not _wrapper(names[i])}:
                counts["inclusive"][label] += weight

    def shares(kind: str, n: int = top) -> list[tuple[str, float]]:
        return [(label, count / total) for label, count in counts[kind].most_common(n)] if total else []

    return Profile(
        name=name,
        path=path,
        samples=total,
        idle_included=idle_included,
        loop_share=loop / total if total else 0.0,
        self_top=shares("self"),
        hot_lines=shares("line", 10),
        by_file=shares("file", 10),
        inclusive=shares("inclusive"),
    )


def record(pid: int, seconds: float, name: str, *, idle: bool = False) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` for ``seconds`` (``idle``: waits too); the py-spy process (None: no py-spy)."""
    binary = py_spy()
    if binary is None:
        return None
    PROFILES.mkdir(parents=True, exist_ok=True)
    output = PROFILES / f"{name}.speedscope.json"
    output.unlink(missing_ok=True)
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "100",
            "--nonblocking",
            *(["--idle"] if idle else []),
            "--format",
            "speedscope",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finish(process: subprocess.Popen[bytes] | None, name: str, seconds: float, *, idle: bool = False) -> Profile | None:
    if process is None:
        return None
    process.wait(timeout=seconds + 60)
    output = PROFILES / f"{name}.speedscope.json"
    if not output.exists():
        return None
    return summarise(name, output, idle_included=idle)
