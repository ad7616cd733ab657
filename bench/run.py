"""``make bench``: every benchmark of issue 8 in one run, then docs/benchmarks.md and its plots.

Order: the databases (built once, then cached), the verifier (pytest-benchmark),
then three servers side by side, each on its own fresh copy of a database: the
bare reference, billportal on 1,000 customers, billportal on 1,000,000 customers
and 5,000,000 invoices (100,000 and 500,000 with BENCH_QUICK=1); then PostgreSQL +
Redis, SQLite's commit latency on this disk, CSV imports (bench/imports.py), the soak and the kill -9 test. Then
the targets, a py-spy profile for each one missed (all of them with
BENCH_PROFILE=1), and the report.

Settings from the environment: BENCH_QUICK=1 (about two minutes), BENCH_PROFILE=1,
BENCH_ACCESS_LOG=0 (the default, 1, keeps uvicorn's access log on, as a
production server runs; it is written to a file under var/bench/logs/).
All traffic goes to 127.0.0.1; every load is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from bench import commit_latency, imports, lists, loadgen, pgredis, profile
from bench.common import (
    COOKIE_NAME,
    DOCS,
    HOST_HEADER,
    PORTAL_PAGES,
    PYTHON,
    ROOT,
    VAR,
    Durations,
    durations,
    page_paths,
    paired_ratio,
    quick_mode,
    write_secret,
)
from bench.generate import HEAVY_CUSTOMERS, Dataset, ensure
from bench.servers import Server, copy_dataset
from bench.tokens import make_token, make_tokens, sso_key, write_login_lines
from bench.wrk import WrkResult, run_wrk, wrk_version

TOKEN_RATE_CAP = 15_000  # tokens made per second of a wrk run: more than any server here can take
CHECK_CONCURRENCY = 16
SOAK_SHARE = 0.7  # the open-loop rate that must hold, as a share of the closed-loop maximum
SOAK_P99_MS = 50.0
# Past the maximum: an open loop at this share of it, from more connections than a process takes
# requests at once (BILLPORTAL_MAX_IN_FLIGHT), so that what queues is the server's, not the generator's.
OVERLOAD_SHARE = 1.5
OVERLOAD_CONNECTIONS = 1024
OVERLOAD_P99_MS = 100.0  # every answer, 303 or 503: refused at once rather than queued
OVERLOAD_GOODPUT = 0.7  # sign-ins answered 303 per second, as a share of the maximum

SMALL = Dataset("c1000-i5000", 1_000, 5_000)


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def access_log_on() -> bool:
    return os.environ.get("BENCH_ACCESS_LOG", "1") not in ("0", "false", "no", "")


def profile_all() -> bool:
    return os.environ.get("BENCH_PROFILE", "") not in ("", "0", "false", "no")


# -- what the report says about the machine and the software -----------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text(encoding="ascii", errors="replace")
    total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    return {
        "nproc": os.cpu_count(),
        "cpu": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(int(total.group(1)) / 1024 / 1024, 1) if total else None,
        "kernel": platform.release(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    result = subprocess.run([git, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip()


def versions() -> dict[str, str]:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src"))
    return {
        "billportal": f"{_version('billportal')} ({commit or 'no git'}{' + uncommitted src/' if dirty else ''})",
        "Python": platform.python_version(),
        "uvicorn": _version("uvicorn"),
        "starlette": _version("starlette"),
        "PyJWT": _version("PyJWT"),
        "SQLite": sqlite3.sqlite_version,
        "SQLAlchemy": _version("SQLAlchemy"),
        "httptools": _version("httptools"),
        "uvloop": _version("uvloop"),
        "Jinja2": _version("Jinja2"),
        "wrk": wrk_version(),
        "py-spy": _version("py-spy"),
    }


# -- the measurements ----------------------------------------------------------------


def sign_in_counts(data_dir: Path) -> dict[str, int]:
    """Sign-in events by result, read beside the running server (WAL readers never block it)."""
    conn = sqlite3.connect(f"file:{data_dir / 'billportal.sqlite3'}?mode=ro", uri=True)
    try:
        return {str(r): int(n) for r, n in conn.execute("SELECT result, count(*) FROM sign_in_events GROUP BY 1")}
    finally:
        conn.close()


def wrk_sign_in(server: Server, key: str, customers: int, seconds: float, name: str) -> WrkResult:
    lines = VAR / "run" / f"{name}.lines"
    write_login_lines(lines, make_tokens(key, customers, int(TOKEN_RATE_CAP * max(seconds, 1)) + 1000))
    try:
        return _timed(server, lambda: run_wrk(server.port, lines, seconds))
    finally:
        lines.unlink(missing_ok=True)


def _timed(server: Server, run: Callable[[], WrkResult]) -> WrkResult:
    """A wrk run, with the server's CPU seconds over it."""
    before = server.cpu_seconds()
    result = run()
    return dataclasses.replace(result, cpu_seconds=server.cpu_seconds() - before)


def open_loop(
    server: Server,
    key: str,
    customers: int,
    rate: float,
    seconds: float,
    *,
    keep_cookies: bool = False,
    events: list[tuple[float, Callable[[], None]]] | None = None,
    generator: loadgen.LoadGenerator | None = None,
) -> loadgen.Result:
    tokens = make_tokens(key, customers, max(1, int(rate * seconds)))
    requests = [loadgen.get(f"/login/{token}", tag=customer) for customer, token in tokens]
    gen = generator or loadgen.LoadGenerator(server.port, keep_cookies=keep_cookies)
    # The gigabytes the run wrote into its datasets' copies go to disk first: else the kernel's
    # writeback throttles every server's writes in mid-run (seen as 0.5-4 s stalls on this VM).
    os.sync()
    gc.disable()  # a bounded run: no collector pause in the generator's timing
    try:
        result: loadgen.Result = loadgen.run(lambda: gen.open_loop(requests, rate, events=events or []))
    finally:
        gc.enable()
    return result


def portal_cookies(server: Server, key: str) -> list[tuple[int, str]]:
    """Sign the heavy customers in (they have a full page of invoices); their session cookies."""
    cookies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers={"Host": HOST_HEADER}) as client:
        for customer in range(1, HEAVY_CUSTOMERS + 1):
            answer = client.get(f"/login/{make_token(key, customer, os.urandom(12).hex())}", follow_redirects=False)
            value = answer.headers.get("set-cookie", "").split(";", 1)[0]
            if answer.status_code != 303 or not value.startswith(f"{COOKIE_NAME}="):
                raise RuntimeError(f"the portal sign-in answered {answer.status_code}")
            cookies.append((customer, value.split("=", 1)[1]))
    return cookies


def wrk_portal(server: Server, cookies: list[tuple[int, str]], page: str, seconds: float, name: str) -> WrkResult:
    """wrk on one portal page: each signed-in customer asks for its own path of that page."""
    paths = page_paths(server.data_dir, [customer for customer, _ in cookies])
    lines = VAR / "run" / f"{name}.lines"
    write_secret(lines, [f"{paths[customer][page]}\t{COOKIE_NAME}={cookie}" for customer, cookie in cookies])
    try:
        return _timed(server, lambda: run_wrk(server.port, lines, seconds))
    finally:
        lines.unlink(missing_ok=True)


def portal_body(server: Server, cookie: str, path: str) -> str:
    """A page's status and body, but for its CSRF token (a PDF's: but for its creation date and file id)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers={"Host": HOST_HEADER}) as client:
        answer = client.get(path, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    if answer.headers.get("content-type", "").startswith("application/pdf"):
        body = re.sub(rb"/CreationDate \([^)]*\)|/ID \[[^\]]*\]", b"", answer.content).decode("latin-1")
    else:
        body = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', answer.text)
    return f"{answer.status_code}:{answer.headers.get('content-disposition', '')}:{body}"


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured
    profile: str = ""  # the profile that explains a miss

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "measured": self.measured,
            "met": self.met,
            "profile": self.profile,
        }


@dataclass
class Subject:
    """One server under test in a group, and what was measured of it."""

    name: str
    server: Server
    data: Path
    key: str
    customers: int
    count_events: bool
    portal: bool = True
    out: dict[str, Any] = field(default_factory=dict)


def _best_of(runs: list[WrkResult]) -> dict[str, Any]:
    """The best round (interference only ever lowers throughput), with every round's rate beside it."""
    best = max(runs, key=lambda run: run.rate)
    rates = sorted(run.rate for run in runs)
    cpu = sorted(1e6 * run.cpu_seconds / run.served for run in runs if run.served)
    return best.as_dict() | {
        "rounds": [round(run.rate, 1) for run in runs],
        "cpu_us_per_request_median": round(cpu[len(cpu) // 2], 1) if cpu else None,
        "median_rate": round(rates[len(rates) // 2], 1),
        "total_errors": sum(run.error_count for run in runs),
        "total_requests": sum(run.requests for run in runs),
        "wrapped": sum(run.wrapped for run in runs),
    }


def _rate(run: Any, *path: str) -> float | None:
    """``run[path...]["rate"]`` of a measured run, or None."""
    node = run
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node["rate"]) if isinstance(node, dict) and node.get("rate") else None


def _cpu(run: Any) -> str:
    value = run.get("cpu_us_per_request_median") if isinstance(run, dict) else None
    return f"{value:,.0f} µs CPU" if value else "CPU not measured"


def _ratio_target(name: str, goal: float, ours: Any, ref: Any, profile_name: str = "") -> Target:
    """ours / reference, as the median of the rounds' ratios, with their spread and each side's CPU per request."""
    paired = paired_ratio(ours, ref)
    if paired is None:
        return _not_measured(name, f">= {goal}x")
    median, low, high = paired
    measured = (
        f"{median:.2f}x (rounds {low:.2f}-{high:.2f}; {ours['median_rate']:,.0f} / {ref['median_rate']:,.0f} per s;"
        f" {_cpu(ours)} / {_cpu(ref)} per request)"
    )
    return Target(name, f">= {goal}x", measured, median >= goal, profile_name)


def _not_measured(name: str, goal: str) -> Target:
    return Target(name, goal, "not measured", None)


def _throughput_target(r: dict[str, Any]) -> Target:
    ours, ref = (r.get("billportal_small") or {}).get("max"), (r.get("reference") or {}).get("max")
    return _ratio_target("Sign-in on SQLite, billportal / durable reference", 0.85, ours, ref, "signin-max")


def _page_targets(r: dict[str, Any]) -> list[Target]:
    ours, ref = (r.get("billportal_small") or {}).get("portal", {}), (r.get("reference") or {}).get("portal", {})
    return [
        _ratio_target(
            f"PDF {page.removesuffix('_pdf')}, billportal / reference (same SQL, same fpdf2 code)"
            if page.endswith("_pdf")
            else f"Page {page}, billportal / reference (same SQL, same templates)",
            0.85,
            ours.get(page),
            ref.get(page),
            page,
        )
        for page in PORTAL_PAGES
    ]


def _postgres_target(r: dict[str, Any]) -> Target:
    pg = r.get("postgres_redis") or {}
    return _ratio_target(
        "Sign-in on PostgreSQL, billportal / psycopg reference",
        0.8,
        pg.get("max"),
        (pg.get("reference") or {}).get("max"),
        "pgredis-max",
    )


def _latency_target(r: dict[str, Any]) -> Target:
    name, goal = "Sign-in p99 at half the maximum rate", "< 10 ms"
    ours = r.get("billportal_small")
    if not isinstance(ours, dict) or "half_rate" not in ours:
        return _not_measured(name, goal)
    half = ours["half_rate"]
    p99 = float(half["latency_ms"]["p99"])
    clean = not half["errors"] and all(status == "303" for status in half["statuses"])
    return Target(name, goal, f"{p99:.1f} ms at {half['rate']:,.0f}/s", p99 < 10 and clean, "signin-rate")


def _verifier_target(r: dict[str, Any]) -> Target:
    name, goal = "Verifier, billportal / minimal stdlib check", "<= 2x"
    verifier = r.get("verifier")
    if not isinstance(verifier, dict):
        return _not_measured(name, goal)
    ours, floor = verifier["billportal_verify"]["median_us"], verifier["stdlib_hmac"]["median_us"]
    ratio = ours / floor
    return Target(name, goal, f"{ratio:.2f}x ({ours:.1f} / {floor:.1f} µs, medians)", ratio <= 2, "verifier")


def _scale_target(r: dict[str, Any], name: str, path: tuple[str, ...], profile_name: str) -> Target:
    goal = "within 1.2x"
    small, large = _rate(r.get("billportal_small"), *path), _rate(r.get("billportal_large"), *path)
    if not small or not large:
        return _not_measured(name, goal)
    ratio = small / large
    measured = f"{ratio:.2f}x the time ({large:,.0f} vs {small:,.0f} per s)"
    return Target(name, goal, measured, ratio <= 1.2, profile_name)


def _rss_target(r: dict[str, Any]) -> Target:
    name, goal = "Peak RSS per worker under load", "< 150 MB"
    runs = [r.get(key) for key in ("billportal_small", "billportal_large", "soak")]
    measured = [run for run in runs if isinstance(run, dict) and "peak_rss_mb" in run]
    if not measured:
        return _not_measured(name, goal)
    worst = max(measured, key=lambda run: float(run["peak_rss_mb"]))
    peak = float(worst["peak_rss_mb"])
    start = worst.get("rss_at_start_mb")
    text = f"{peak:.0f} MB (worst of {len(measured)} runs{f'; {start:.0f} MB when it started' if start else ''})"
    return Target(name, goal, text, peak < 150)


def _soak_target(r: dict[str, Any]) -> Target:
    goal = f"every request answered 303, p99 < {SOAK_P99_MS:.0f} ms"
    share = f"{SOAK_SHARE:.0%} of the closed-loop maximum"
    soak = r.get("soak")
    if not isinstance(soak, dict):
        return _not_measured(f"Soak, open loop at {share}", goal)
    measured = (
        f"{soak['completed']:,} of {soak['planned']:,} answered at {soak['rate']:,.0f}/s "
        f"(maximum just before: {soak['max_rate_just_before']:,.0f}/s), "
        f"p50 {soak['latency_ms']['p50']:.1f} ms, p99 {soak['latency_ms']['p99']:.1f} ms, "
        f"{soak['error_count']} errors, {soak['5xx']} 5xx, {soak['not_303']} not 303"
    )
    name = f"Soak: {soak['seconds']:.0f} s open loop at {share}"
    return Target(name, goal, measured, bool(soak["ok"]), "signin-rate")


def _overload_target(r: dict[str, Any]) -> Target:
    goal = (
        f"every request answered (303, or 503 with Retry-After), p99 < {OVERLOAD_P99_MS:.0f} ms, "
        f"sign-ins >= {OVERLOAD_GOODPUT:.0%} of the maximum"
    )
    share = f"{OVERLOAD_SHARE:.1f}x the closed-loop maximum"
    run = r.get("overload")
    if not isinstance(run, dict):
        return _not_measured(f"Overload, open loop at {share}", goal)
    measured = (
        f"{run['completed']:,} of {run['planned']:,} answered at {run['rate']:,.0f}/s "
        f"(maximum just before: {run['max_rate_just_before']:,.0f}/s): {run['answered_303']:,} 303 "
        f"({run['goodput']:,.0f}/s, {run['goodput_share']:.0%}), {run['answered_503']:,} 503, "
        f"{run['error_count']} errors, {run['failed_checks']} other; "
        f"p50 {run['latency_ms']['p50']:.1f} ms, p99 {run['latency_ms']['p99']:.1f} ms"
    )
    name = f"Overload: {run['seconds']:.0f} s open loop at {share}, {OVERLOAD_CONNECTIONS:,} connections"
    return Target(name, goal, measured, bool(run["ok"]), "")


def _startup_targets(r: dict[str, Any]) -> list[Target]:
    found = r.get("startup")
    wanted = (
        ("billportal --help", "help_seconds", 0.15, "{:.2f} s", "< 0.15 s"),
        ("serve: from exec to its first answer", "serve_seconds", 0.5, "{:.2f} s", "< 0.5 s"),
        ("An idle SQLite worker's RSS", "idle_rss_mb", 65.0, "{:.0f} MB", "< 65 MB"),
    )
    if not isinstance(found, dict):
        return [_not_measured(name, goal) for name, _, _, _, goal in wanted]
    targets = [
        Target(name, goal, shape.format(found[key]), found[key] < limit) for name, key, limit, shape, goal in wanted
    ]
    if "signed_in_rss_mb" in found:  # not a target: shown beside the idle figure so that it does not flatter
        idle = targets[-1]
        measured = f"{idle.measured} ({found['signed_in_rss_mb']:.0f} MB after its first sign-in, which loads AES)"
        targets[-1] = dataclasses.replace(idle, measured=measured)
    return targets


def _workers_targets(r: dict[str, Any]) -> list[Target]:
    found = r.get("workers") or {}
    one, two = found.get("one") or {}, found.get("two") or {}
    return [
        _ratio_target("Sign-in, --workers 2 / one worker", 1.2, two.get("max"), one.get("max")),
        _ratio_target(
            "My Account, --workers 2 / one worker",
            1.6,
            (two.get("portal") or {}).get("my_account"),
            (one.get("portal") or {}).get("my_account"),
        ),
    ]


def _lists_target(r: dict[str, Any], key: str = "lists", where: str = "SQLite") -> Target:
    found = r.get(key)
    goal = f"every page p99 < {lists.TARGET_P99_MS:.0f} ms"
    if not isinstance(found, dict) or "lists" not in found:
        return _not_measured(f"Dashboard and API lists at scale, {where}", goal)
    name = f"Dashboard and API lists on {where}: {found['events']:,} sign-in events, {found['customers']:,} customers"
    worst_name, worst = max(found["lists"].items(), key=lambda item: item[1]["p99_ms"])
    measured = f"worst p99 {worst['p99_ms']:.1f} ms ({worst_name}) over {len(found['lists'])} lists"
    return Target(name, goal, measured, bool(found["ok"]))


def _crash_target(r: dict[str, Any]) -> Target:
    name, goal = "kill -9 in mid-load, then restart", "every 303 session survives"
    crash = r.get("crash")
    if not isinstance(crash, dict):
        return _not_measured(name, goal)
    answered = crash["answered_303_before_kill"]
    measured = f"{crash['still_signed_in']:,} of {answered:,} sessions sign in after the restart"
    return Target(name, goal, measured, bool(crash["ok"]))


class Bench:
    def __init__(self, d: Durations) -> None:
        self.d = d
        self.large = Dataset(f"c{d.large_customers}-i{d.large_invoices}", d.large_customers, d.large_invoices)
        self.results: dict[str, Any] = {
            "mode": "quick" if quick_mode() else "full",
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "access_log": access_log_on(),
            "durations": d.__dict__,
            "errors": {},
        }
        self.bodies: dict[str, str] = {}
        self.data_dirs: dict[str, Path] = {}

    def section(self, name: str, work: Callable[[], Any]) -> Any:
        """Run one part; a failure is recorded (and reported) instead of stopping the run."""
        _say(f"{name} ...")
        started = time.monotonic()
        try:
            value = work()
        except Exception as exc:  # noqa: BLE001 - the report says what failed, the run goes on
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            (VAR / "logs").mkdir(parents=True, exist_ok=True)
            (VAR / "logs" / f"error-{name}.txt").write_text(traceback.format_exc(), encoding="utf-8")
            _say(f"{name} FAILED: {type(exc).__name__}: {exc}")
            return None
        _say(f"{name} done in {time.monotonic() - started:.0f} s")
        return value

    # -- parts -----------------------------------------------------------------------

    def datasets(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for dataset in (SMALL, self.large):
            path, seconds = ensure(dataset)
            self.data_dirs[dataset.name] = path
            size = (path / "billportal.sqlite3").stat().st_size
            out[dataset.name] = {
                "customers": dataset.customers,
                "invoices": dataset.invoices,
                "built_seconds": None if seconds is None else round(seconds, 1),
                "cached": seconds is None,
                "size_mb": round(size / 1e6, 1),
                "build_seconds_when_built": json.loads((path / "meta.json").read_text(encoding="utf-8")).get(
                    "build_seconds"
                ),
            }
        return out

    def sqlite_cache_mib(self) -> float:
        """The page cache each of billportal's SQLite connections may hold (its own ``connect``'s pragmas)."""
        from billportal.storage.sqlite import connect

        copy = copy_dataset(self.data_dirs[SMALL.name], "pragmas")
        conn = connect(copy / "billportal.sqlite3")
        try:
            pages = int(conn.execute("PRAGMA cache_size").fetchone()[0])
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()
            shutil.rmtree(copy, ignore_errors=True)
        return round((-pages * 1024 if pages < 0 else pages * page_size) / 1024 / 1024, 1)

    def verifier(self) -> dict[str, Any]:
        output = VAR / "verifier.json"
        output.unlink(missing_ok=True)
        timing = ["--benchmark-max-time=0.5", "--benchmark-min-rounds=20"] if quick_mode() else []
        command = [
            PYTHON, "-m", "pytest", str(ROOT / "bench" / "test_verifier.py"), "-q", "--benchmark-only",
            f"--benchmark-json={output}", "--benchmark-columns=min,median,mean,stddev,rounds", *timing,
        ]  # fmt: skip
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=900)
        if completed.returncode != 0 or not output.exists():
            raise RuntimeError(f"pytest-benchmark failed: {completed.stdout[-800:]}{completed.stderr[-800:]}")
        data = json.loads(output.read_text(encoding="utf-8"))
        out = {}
        for bench in data["benchmarks"]:
            stats = bench["stats"]
            out[bench["name"].removeprefix("test_")] = {
                "median_us": round(stats["median"] * 1e6, 2),
                "mean_us": round(stats["mean"] * 1e6, 2),
                "min_us": round(stats["min"] * 1e6, 2),
                "rounds": stats["rounds"],
            }
        return out

    def measure_group(self, subjects: list[Subject]) -> None:
        """Measure servers side by side: wrk rounds interleaved, so a busy moment hurts them all alike."""
        with contextlib.ExitStack() as stack:
            for subject in subjects:
                stack.enter_context(subject.server)
                subject.out["rss_at_start_mb"] = round(subject.server.rss_mb(), 1)
            self._max_rounds(subjects)
            for subject in subjects:
                self._half_rate(subject)
            portal = [s for s in subjects if s.portal]
            if portal:
                self._portal_rounds(portal)
            for subject in subjects:
                subject.out["peak_rss_mb"] = round(subject.server.peak_rss_mb(), 1)

    def _max_rounds(self, subjects: list[Subject]) -> None:
        d = self.d
        for subject in subjects:
            wrk_sign_in(subject.server, subject.key, subject.customers, d.warmup, f"{subject.name}-warmup")
        runs: dict[str, list[WrkResult]] = {s.name: [] for s in subjects}
        events: dict[str, dict[str, int]] = {s.name: {"success": 0, "failure": 0} for s in subjects}
        for round_number in range(d.rounds):
            for subject in subjects:
                before = sign_in_counts(subject.data) if subject.count_events else {}
                name = f"{subject.name}-max-{round_number}"
                runs[subject.name].append(
                    wrk_sign_in(subject.server, subject.key, subject.customers, d.max_throughput, name)
                )
                if subject.count_events:
                    after = sign_in_counts(subject.data)
                    for result in ("success", "failure"):
                        events[subject.name][result] += after.get(result, 0) - before.get(result, 0)
        for subject in subjects:
            subject.out["max"] = _best_of(runs[subject.name])
            if subject.count_events:
                subject.out["events"] = events[subject.name]

    def _half_rate(self, subject: Subject) -> None:
        rate = max(10.0, subject.out["max"]["rate"] / 2)
        server, key, customers = subject.server, subject.key, subject.customers
        open_loop(server, key, customers, rate, self.d.warmup)  # warm-up at that rate, not counted
        half = open_loop(server, key, customers, rate, self.d.fixed_rate)
        subject.out["half_rate"] = half.summary()
        subject.out["half_rate_curve"] = half.percentile_curve()

    def _portal_rounds(self, subjects: list[Subject], pages: tuple[str, ...] = tuple(PORTAL_PAGES)) -> None:
        d = self.d
        cookies = {s.name: portal_cookies(s.server, s.key) for s in subjects}
        for page in pages:
            runs: dict[str, list[WrkResult]] = {s.name: [] for s in subjects}
            for subject in subjects:
                customer, first = cookies[subject.name][0]
                path = page_paths(subject.data, [customer])[customer][page]
                self.bodies[f"{subject.name}:{page}"] = portal_body(subject.server, first, path)
                wrk_portal(subject.server, cookies[subject.name], page, d.warmup, f"{subject.name}-{page}-warmup")
            for round_number in range(d.rounds):
                for subject in subjects:
                    name = f"{subject.name}-{page}-{round_number}"
                    runs[subject.name].append(wrk_portal(subject.server, cookies[subject.name], page, d.portal, name))
            for subject in subjects:
                subject.out.setdefault("portal", {})[page] = _best_of(runs[subject.name])

    def servers(self) -> None:
        """The reference and billportal on both databases, measured side by side."""
        subjects = []
        for name, kind, dataset in (
            ("reference", "reference", SMALL),
            ("billportal_small", "billportal", SMALL),
            ("billportal_large", "billportal", self.large),
        ):
            data = copy_dataset(self.data_dirs[dataset.name], name)
            server = Server(kind, data, access_log=access_log_on())
            subjects.append(Subject(name, server, data, sso_key(data), dataset.customers, kind == "billportal"))
        try:
            self.measure_group(subjects)
        finally:
            for subject in subjects:
                self.results[subject.name] = subject.out if "max" in subject.out else None
                shutil.rmtree(subject.data, ignore_errors=True)

    def startup(self) -> dict[str, Any]:
        """``billportal --help`` (median of 7), and ``serve`` from exec to its first answer and idle (median of 5)."""
        helps = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run([PYTHON, "-m", "billportal", "--help"], capture_output=True, check=True, cwd=ROOT)
            helps.append(time.perf_counter() - started)
        serves, idle_rss, signed_in_rss = [], [], []
        for round_number in range(5):
            data = copy_dataset(self.data_dirs[SMALL.name], f"startup-{round_number}")
            try:
                with Server("billportal", data, access_log=access_log_on()) as server:
                    serves.append(server.first_answer_seconds)  # not the identity check after it
                    time.sleep(2)  # idle: what a worker holds when nothing is asked of it
                    idle_rss.append(server.rss_mb())
                    # And once it has signed someone in (the SSO key opened: AES loaded), for the record.
                    token = make_token(sso_key(data), 1, f"startup-{round_number}")
                    answer = httpx.get(f"http://127.0.0.1:{server.port}/login/{token}", headers={"Host": HOST_HEADER})
                    if answer.status_code != 303:
                        raise RuntimeError(f"a sign-in answered {answer.status_code}")
                    time.sleep(1)
                    signed_in_rss.append(server.rss_mb())
            finally:
                shutil.rmtree(data, ignore_errors=True)
        return {
            "help_seconds": round(sorted(helps)[len(helps) // 2], 3),
            "serve_seconds": round(sorted(serves)[len(serves) // 2], 3),
            "idle_rss_mb": round(sorted(idle_rss)[len(idle_rss) // 2], 1),
            "signed_in_rss_mb": round(sorted(signed_in_rss)[len(signed_in_rss) // 2], 1),
        }

    def workers(self) -> dict[str, Any]:
        """``serve --workers 2`` against one worker, in alternating rounds: sign-in and My Account."""
        subjects = []
        for name, workers in (("one_worker", 1), ("two_workers", 2)):
            data = copy_dataset(self.data_dirs[SMALL.name], name)
            server = Server("billportal", data, access_log=access_log_on(), workers=workers)
            subjects.append(Subject(name, server, data, sso_key(data), SMALL.customers, False))
        try:
            with contextlib.ExitStack() as stack:
                for subject in subjects:
                    stack.enter_context(subject.server)
                self._max_rounds(subjects)
                self._portal_rounds(subjects, ("my_account",))
            one, two = subjects[0].out, subjects[1].out
            return {"one": one, "two": two}
        finally:
            for subject in subjects:
                shutil.rmtree(subject.data, ignore_errors=True)

    def postgres_redis(self) -> dict[str, Any]:
        if not pgredis.supported():
            return {"status": "not measured: not built yet"}
        database_url = os.environ.get("BILLPORTAL_DATABASE_URL", "")
        redis_url = os.environ.get("BILLPORTAL_REDIS_URL", "")
        private_pg: pgredis.PrivatePostgres | None = None
        private_redis: pgredis.PrivateRedis | None = None
        if database_url or redis_url:
            if not (database_url and redis_url):
                return {"status": "not measured: set both BILLPORTAL_DATABASE_URL and BILLPORTAL_REDIS_URL"}
            if not (pgredis.loopback_only(database_url) and pgredis.loopback_only(redis_url)):
                return {"status": "not measured: the benchmark only sends traffic to this machine (127.0.0.1)"}
            where = "servers named by BILLPORTAL_DATABASE_URL and BILLPORTAL_REDIS_URL"
        else:
            missing = pgredis.private_servers_available()
            if missing:
                return {"status": f"not measured: {missing} not installed on this machine"}
            private_pg = pgredis.PrivatePostgres(VAR / "pg")
            private_redis = pgredis.PrivateRedis()
            private_pg.start()
            private_redis.start()
            database_url, redis_url = private_pg.url, private_redis.url
            where = "a private PostgreSQL cluster (fsync on) and Redis (no persistence) started for the run"
        data = VAR / "run" / "pgredis"
        shutil.rmtree(data, ignore_errors=True)
        try:
            key = pgredis.seed(database_url, redis_url, data, SMALL)
            env = {
                "BILLPORTAL_DATABASE_URL": database_url,
                "BILLPORTAL_REDIS_URL": redis_url,
                # A fleet shares one master key through its environment (only SQLite may keep it in a file).
                "BILLPORTAL_MASTER_KEY": (data / "master.key").read_text(encoding="ascii").strip(),
            }
            server = Server("billportal", data, access_log=access_log_on(), extra_env=env)
            subject = Subject("postgres_redis", server, data, key, SMALL.customers, False, portal=False)
            # The psycopg reference on the same database, measured in alternating rounds with billportal.
            reference_server = Server("reference", data, access_log=access_log_on(), extra_env=env)
            reference = Subject("reference_pg", reference_server, data, key, SMALL.customers, False, portal=False)
            self.measure_group([reference, subject])
            out = subject.out
            out["reference"] = reference.out
            out["status"] = "measured"
            if profile_all():
                self.results.setdefault("profiles", {})["pgredis-max"] = self._profile_running(
                    Server("billportal", data, access_log=access_log_on(), extra_env=env), key, SMALL, "pgredis-max"
                )
            out["where"] = where
            return out
        finally:
            if private_redis is not None:
                private_redis.stop()
            if private_pg is not None:
                private_pg.stop()
            shutil.rmtree(data, ignore_errors=True)

    def _max_just_before(self, server: Server, key: str, name: str) -> float:
        """The closed-loop maximum of ``server``, measured now: the machine's speed drifts within a run."""
        wrk_sign_in(server, key, SMALL.customers, self.d.warmup, f"{name}-warmup")
        return wrk_sign_in(server, key, SMALL.customers, self.d.max_throughput, f"{name}-max").rate

    def soak(self) -> dict[str, Any]:
        data = copy_dataset(self.data_dirs[SMALL.name], "soak")
        key = sso_key(data)
        try:
            with Server("billportal", data, access_log=access_log_on()) as server:
                rss_at_start = server.rss_mb()
                max_rate = self._max_just_before(server, key, "soak")
                rate = SOAK_SHARE * max_rate
                open_loop(server, key, SMALL.customers, rate, self.d.warmup)
                result = open_loop(server, key, SMALL.customers, rate, self.d.soak)
                rss = server.peak_rss_mb()
            summary = result.summary()
            fivexx = sum(n for status, n in result.statuses.items() if status >= 500)
            not_303 = sum(n for status, n in result.statuses.items() if status != 303)
            errors = sum(result.errors.values())
            summary.update(
                {
                    "seconds": self.d.soak,
                    "share": SOAK_SHARE,
                    "max_rate_just_before": round(max_rate, 1),
                    "5xx": fivexx,
                    "not_303": not_303,
                    "error_count": errors,
                    "ok": errors == 0
                    and not_303 == 0
                    and result.completed == result.planned
                    and summary["latency_ms"]["p99"] < SOAK_P99_MS,
                    "peak_rss_mb": round(rss, 1),
                    "rss_at_start_mb": round(rss_at_start, 1),
                }
            )
            return summary
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def overload(self) -> dict[str, Any]:
        """Past the maximum: each request answered at once, 303 or 503 with Retry-After, none queued."""
        data = copy_dataset(self.data_dirs[SMALL.name], "overload")
        key = sso_key(data)

        def check(request: loadgen.Request, status: int, head: bytes, body: bytes) -> bool:
            del request, body
            return status == 303 or (status == 503 and b"\r\nretry-after: 1\r\n" in head.lower())

        try:
            with Server("billportal", data, access_log=access_log_on()) as server:
                max_rate = self._max_just_before(server, key, "overload")
                rate = OVERLOAD_SHARE * max_rate
                generator = loadgen.LoadGenerator(
                    server.port,
                    max_connections=OVERLOAD_CONNECTIONS,
                    initial_connections=OVERLOAD_CONNECTIONS,  # open before the run, as a busy site's are
                    check=check,
                )
                result = open_loop(server, key, SMALL.customers, rate, self.d.overload, generator=generator)
            summary = result.summary()
            signed_in = result.statuses.get(303, 0)
            refused = result.statuses.get(503, 0)
            errors = sum(result.errors.values())
            goodput = signed_in / result.elapsed if result.elapsed else 0.0
            summary.update(
                {
                    "seconds": self.d.overload,
                    "share": OVERLOAD_SHARE,
                    "connections": OVERLOAD_CONNECTIONS,
                    "p99_goal_ms": OVERLOAD_P99_MS,
                    "max_rate_just_before": round(max_rate, 1),
                    "answered_303": signed_in,
                    "answered_503": refused,
                    "error_count": errors,
                    "goodput": round(goodput, 1),
                    "goodput_share": round(goodput / max_rate, 3) if max_rate else 0.0,
                    "ok": errors == 0
                    and result.failed_checks == 0
                    and refused > 0
                    and result.completed == result.planned
                    and summary["latency_ms"]["p99"] < OVERLOAD_P99_MS
                    and goodput >= OVERLOAD_GOODPUT * max_rate,
                }
            )
            return summary
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def crash(self, rate: float) -> dict[str, Any]:
        data = copy_dataset(self.data_dirs[SMALL.name], "crash")
        key = sso_key(data)
        server = Server("billportal", data, access_log=access_log_on())
        try:
            server.start()
            open_loop(server, key, SMALL.customers, rate, self.d.warmup)
            generator = loadgen.LoadGenerator(server.port, keep_cookies=True)
            kill_at = self.d.crash / 2
            killed_at: list[float] = []

            def kill() -> None:
                killed_at.append(time.perf_counter())
                server.kill()

            result = open_loop(
                server,
                key,
                SMALL.customers,
                rate,
                self.d.crash,
                events=[(kill_at, loadgen.stop_after(generator, kill))],
                generator=generator,
            )
            answered = result.cookies
            server.start()  # the same data folder and port: a restart after the crash

            def check(request: loadgen.Request, status: int, head: bytes, body: bytes) -> bool:
                del head
                return status == 200 and re.search(rb"Bench Customer %d(?!\d)" % request.tag, body) is not None

            checker = loadgen.LoadGenerator(server.port, check=check)
            requests = [loadgen.get("/", cookie=cookie, tag=customer) for customer, cookie in answered]
            verdict = loadgen.run(lambda: checker.closed_loop(requests, CHECK_CONCURRENCY, deadline=300))
            signed_in = verdict.statuses.get(200, 0) - verdict.failed_checks
            return {
                "rate": round(rate, 1),
                "kill_after_s": kill_at,
                "answered_303_before_kill": len(answered),
                "lost_in_flight": sum(result.errors.values()),
                "other_statuses_before_kill": {str(k): v for k, v in result.statuses.items() if k != 303},
                "checked": verdict.completed,
                "still_signed_in": signed_in,
                "check_statuses": {str(k): v for k, v in sorted(verdict.statuses.items())},
                "check_errors": dict(verdict.errors),
                "ok": len(answered) > 0 and signed_in == len(answered),
            }
        finally:
            server.stop()
            shutil.rmtree(data, ignore_errors=True)

    # -- profiles ----------------------------------------------------------------------

    def profile_server(self, name: str, dataset: Dataset, load: str, rate: float = 0.0) -> dict[str, Any]:
        """py-spy on billportal while it serves ``load``: "signin-max", "signin-rate" or a portal page."""
        data = copy_dataset(self.data_dirs[dataset.name], f"profile-{name}")
        key = sso_key(data)
        seconds = self.d.profile
        try:
            with Server("billportal", data, access_log=access_log_on()) as server:
                wrk_sign_in(server, key, dataset.customers, 1, f"{name}-warmup")
                cookies = portal_cookies(server, key) if load in PORTAL_PAGES else []
                idle = load == "signin-rate"  # a latency question: waits count too
                recorder = profile.record(server.pid, seconds, name, idle=idle)
                if recorder is None:
                    return {"status": "py-spy is not installed"}
                if load == "signin-max":
                    wrk_sign_in(server, key, dataset.customers, seconds + 1, name)
                elif load == "signin-rate":
                    open_loop(server, key, dataset.customers, rate, seconds + 1)
                else:
                    wrk_portal(server, cookies, load, seconds + 1, name)
                result = profile.finish(recorder, name, seconds, idle=idle)
            if result is None:
                return {"status": "py-spy recorded nothing (is ptrace allowed?)"}
            return {"status": "recorded", "load": load, "dataset": dataset.label, "seconds": seconds} | result.as_dict()
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def _profile_running(self, server: Server, key: str, dataset: Dataset, name: str) -> dict[str, Any]:
        """py-spy on ``server`` under the sign-in maximum (for a server that needs more than a data folder)."""
        seconds = self.d.profile
        with server:
            wrk_sign_in(server, key, dataset.customers, 1, f"{name}-warmup")
            recorder = profile.record(server.pid, seconds, name)
            if recorder is None:
                return {"status": "py-spy is not installed"}
            wrk_sign_in(server, key, dataset.customers, seconds + 1, name)
            result = profile.finish(recorder, name, seconds)
        if result is None:
            return {"status": "py-spy recorded nothing (is ptrace allowed?)"}
        return {"status": "recorded", "load": "signin-max", "dataset": dataset.label, "seconds": seconds} | (
            result.as_dict()
        )

    def profile_verifier(self) -> dict[str, Any]:
        binary = profile.py_spy()
        if binary is None:
            return {"status": "py-spy is not installed"}
        output = profile.PROFILES / "verifier.speedscope.json"
        profile.PROFILES.mkdir(parents=True, exist_ok=True)
        seconds = max(2, round(self.d.profile))
        command = [
            binary, "record", "--rate", "200", "--format", "speedscope", "--output", str(output), "--",
            PYTHON, "-m", "bench.test_verifier", str(seconds),
        ]  # fmt: skip
        subprocess.run(command, cwd=ROOT, capture_output=True, check=False, timeout=seconds + 60)
        if not output.exists():
            return {"status": "py-spy recorded nothing"}
        summary = profile.summarise("verifier", output, within="_loop").as_dict()
        return {"status": "recorded", "load": "verify() in a loop", "seconds": seconds} | summary

    # -- targets -----------------------------------------------------------------------

    def targets(self) -> list[Target]:
        r = self.results
        scale = f"{self.large.customers:,}-customer DB"
        return [
            _throughput_target(r),
            *_page_targets(r),
            _postgres_target(r),
            _latency_target(r),
            _verifier_target(r),
            _scale_target(r, f"Sign-in on the {scale} vs 1,000", ("max",), "signin-max-large"),
            _scale_target(r, f"Invoice list on the {scale} vs 1,000", ("portal", "invoices"), "invoices-large"),
            *_startup_targets(r),
            *_workers_targets(r),
            _lists_target(r),
            _lists_target(r, "lists_postgres", "PostgreSQL + Redis"),
            _rss_target(r),
            _soak_target(r),
            _overload_target(r),
            _crash_target(r),
        ]

    # -- the whole run -------------------------------------------------------------------

    def run(self) -> int:
        r = self.results
        r["machine"] = machine()
        r["versions"] = versions()
        access = "on" if r["access_log"] else "off"
        _say(f"mode {r['mode']}, access log {access}, load average {r['machine']['load_average_at_start']}")
        # The servers run with PYTHONDONTWRITEBYTECODE: compiled once here, as a wheel's install compiles them.
        subprocess.run(
            [PYTHON, "-m", "compileall", "-q", str(ROOT / "src" / "billportal"), str(ROOT / "bench")], check=True
        )
        r["datasets"] = self.section("datasets", self.datasets)
        if r["datasets"] is None:
            return self.finish()
        r["sqlite_cache_mib"] = self.section("sqlite-settings", self.sqlite_cache_mib)
        r["verifier"] = self.section("verifier", self.verifier)
        self.section("servers", self.servers)
        r["startup"] = self.section("startup", self.startup)
        r["workers"] = self.section("workers", self.workers)
        r["lists"] = self.section(
            "lists",
            lambda: lists.measure(self.data_dirs[self.large.name], self.large.customers, access_log=access_log_on()),
        )
        r["lists_postgres"] = self.section(
            "lists-postgres",
            lambda: lists.measure_postgresql(
                self.data_dirs[self.large.name], self.large.customers, access_log=access_log_on()
            ),
        )
        r["postgres_redis"] = self.section("postgres-redis", self.postgres_redis)
        r["commit_latency"] = self.section(
            "commit-latency",
            lambda: commit_latency.measure(
                self.data_dirs[SMALL.name] / "billportal.sqlite3", 3000 if quick_mode() else 10_000
            ),
        )
        r["imports"] = self.section("imports", imports.measure)
        ours = r.get("billportal_small") or {}
        max_rate = float(ours.get("max", {}).get("rate", 0.0))
        r["soak"] = self.section("soak", self.soak)
        r["overload"] = self.section("overload", self.overload)
        if max_rate > 0:
            r["crash"] = self.section("crash", lambda: self.crash(0.8 * max_rate))
        else:
            r["errors"]["crash"] = "no maximum rate measured for billportal"
        self.compare_bodies()
        targets = self.targets()
        r["targets"] = [t.as_dict() for t in targets]
        wanted = {t.profile for t in targets if t.met is False and t.profile}
        if profile_all():
            wanted |= {"signin-max", "signin-rate", "verifier", "invoices", "my_account"}
        r.setdefault("profiles", {})
        for name in sorted(wanted):
            r["profiles"][name] = self.section(f"profile-{name}", lambda name=name: self.profile(name, max_rate))  # type: ignore[misc]
        return self.finish()

    def profile(self, name: str, max_rate: float) -> dict[str, Any]:
        if name == "verifier":
            return self.profile_verifier()
        if name == "signin-max":
            return self.profile_server(name, SMALL, "signin-max")
        if name == "signin-rate":
            return self.profile_server(name, SMALL, "signin-rate", rate=max(10.0, max_rate / 2))
        if name == "signin-max-large":
            return self.profile_server(name, self.large, "signin-max")
        if name == "invoices-large":
            return self.profile_server(name, self.large, "invoices")
        return self.profile_server(name, SMALL, name)

    def compare_bodies(self) -> None:
        """billportal and the reference must send the same page (but for the CSRF token)."""
        same = {}
        for page in PORTAL_PAGES:
            ours, ref = self.bodies.get(f"billportal_small:{page}"), self.bodies.get(f"reference:{page}")
            if ours is not None and ref is not None:
                same[page] = ours == ref
        self.results["portal_same_html"] = same

    def finish(self) -> int:
        from bench.report import write_report

        self.results["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
        path = VAR / "results.json"
        path.write_text(json.dumps(self.results, indent=2, default=str) + "\n", encoding="utf-8")
        written = write_report(self.results, DOCS)
        shutil.rmtree(VAR / "run", ignore_errors=True)
        for target in self.results.get("targets", []):
            verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
            _say(f"target {target['name']} ({target['goal']}): {target['measured']}: {verdict}")
        _say(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in written)} (results: {path.relative_to(ROOT)})")
        if self.results["errors"]:
            _say(f"parts that failed: {', '.join(self.results['errors'])}; see var/bench/logs/")
            return 1
        return 0


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(VAR / "run", ignore_errors=True)
    shutil.rmtree(VAR / "logs", ignore_errors=True)
    started = time.monotonic()
    code = Bench(durations()).run()
    _say(f"finished in {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
