"""docs/benchmarks.md and docs/bench-*.png from var/bench/results.json.

``python -m bench.report`` rewrites them from the last run's results without
measuring anything again. No token, key or session id is ever in the results.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.common import DOCS, PORTAL_PAGES, VAR, paired_ratio

SERVERS = (
    ("reference", "bare reference"),
    ("billportal_small", "billportal, 1k customers"),
    ("billportal_large", "billportal, large DB"),
    ("postgres_redis", "billportal, PostgreSQL + Redis"),
)
COLOURS = {
    "reference": "#9ca3af",
    "billportal_small": "#2563eb",
    "billportal_large": "#1e3a8a",
    "postgres_redis": "#059669",
}


def _n(value: Any, digits: int = 0) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _measured(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    run = results.get(key)
    return run if isinstance(run, dict) and "max" in run else None


def _large_label(results: dict[str, Any]) -> str:
    datasets = results.get("datasets") or {}
    large = [d for d in datasets.values() if d["customers"] > 1000]
    if not large:
        return "large DB"
    return f"{large[0]['customers']:,} customers, {large[0]['invoices']:,} invoices"


SHORT = {
    "reference": "reference",
    "billportal_small": "billportal\n1k customers",
    "billportal_large": "billportal\nlarge DB",
    "postgres_redis": "billportal\nPostgreSQL+Redis",
}


def _short(results: dict[str, Any], key: str) -> str:
    if key == "billportal_large":
        customers = next((d["customers"] for d in (results.get("datasets") or {}).values() if d["customers"] > 1000), 0)
        return f"billportal\n{customers:,} customers" if customers else SHORT[key]
    return SHORT[key]


def _label(results: dict[str, Any], key: str) -> str:
    if key == "billportal_large":
        return f"billportal, {_large_label(results)}"
    return dict(SERVERS)[key]


# -- plots ---------------------------------------------------------------------------


def _log_ms(axis: Axes) -> None:
    """A log-scale millisecond axis labelled 1, 10, 100 rather than 10^0, 10^1, 10^2."""
    axis.set_yscale("log")
    axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.yaxis.set_minor_formatter(NullFormatter())


def plot_sign_in(results: dict[str, Any], path: Path) -> bool:
    runs = [(key, run) for key, _ in SERVERS if (run := _measured(results, key))]
    if not runs:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    names = [_short(results, key) for key, _ in runs]
    rates = [run["max"]["rate"] for _, run in runs]
    bars = left.bar(names, rates, color=[COLOURS[key] for key, _ in runs])
    left.bar_label(bars, labels=[f"{r:,.0f}" for r in rates])
    left.set_title("Sign-in: maximum throughput (wrk -t2 -c16)")
    left.set_ylabel("sign-ins per second")
    left.tick_params(axis="x", labelsize=8)
    width = 0.8 / len(runs)
    for index, (key, run) in enumerate(runs):
        latency = run["half_rate"]["latency_ms"]
        values = [latency["p50"], latency["p90"], latency["p99"]]
        xs = [i + index * width for i in range(3)]
        right.bar(xs, values, width=width, color=COLOURS[key], label=_label(results, key))
    right.axhline(10, color="#dc2626", linestyle="--", linewidth=1, label="p99 target (10 ms)")
    right.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(3)], ["p50", "p90", "p99"])
    _log_ms(right)
    right.set_ylabel("milliseconds, log scale (from the scheduled send time)")
    right.set_title("Sign-in latency at half of each server's maximum rate")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_latency_curve(results: dict[str, Any], path: Path) -> bool:
    runs = [(key, run) for key, _ in SERVERS if (run := _measured(results, key)) and run.get("half_rate_curve")]
    if not runs:
        return False
    fig, axis = plt.subplots(figsize=(8, 4.6))
    for key, run in runs:
        points = run["half_rate_curve"]
        xs = [1 / (1 - p / 100) for p, _ in points]
        axis.plot(xs, [ms for _, ms in points], marker="o", color=COLOURS[key], label=_label(results, key))
    axis.set_xscale("log")
    ticks = [50, 90, 99, 99.9, 99.99]
    axis.set_xticks([1 / (1 - p / 100) for p in ticks], [f"p{p:g}" for p in ticks])
    axis.axhline(10, color="#dc2626", linestyle="--", linewidth=1, label="10 ms")
    _log_ms(axis)
    axis.set_ylabel("milliseconds (log scale)")
    axis.set_title("Sign-in latency by percentile, open loop at half the maximum rate")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_portal(results: dict[str, Any], path: Path) -> bool:
    runs = [
        (key, run)
        for key, _ in SERVERS[:3]
        if (run := results.get(key)) and isinstance(run, dict) and run.get("portal")
    ]
    if not runs:
        return False
    fig, axis = plt.subplots(figsize=(8, 4.6))
    pages = [("my_account", "My Account"), ("invoices", "Invoice list (25 rows)")]
    width = 0.8 / len(runs)
    for index, (key, run) in enumerate(runs):
        values = [run["portal"][page]["rate"] for page, _ in pages]
        xs = [i + index * width for i in range(len(pages))]
        bars = axis.bar(xs, values, width=width, color=COLOURS[key], label=_label(results, key))
        axis.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    axis.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(pages))], [name for _, name in pages])
    axis.set_ylabel("pages per second (wrk -t2 -c16)")
    axis.set_title("Portal pages with a signed-in session")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_verifier(results: dict[str, Any], path: Path) -> bool:
    verifier = results.get("verifier")
    if not verifier:
        return False
    order = [
        ("stdlib_hmac", "minimal stdlib HMAC check"),
        ("billportal_verify", "billportal verify()"),
        ("pyjwt_decode", "PyJWT jwt.decode()"),
    ]
    rows = [(label, verifier[key]["median_us"]) for key, label in order if key in verifier]
    fig, axis = plt.subplots(figsize=(8, 3))
    bars = axis.barh(
        [label for label, _ in rows], [us for _, us in rows], color=["#9ca3af", "#2563eb", "#f59e0b"][: len(rows)]
    )
    axis.bar_label(bars, labels=[f"{us:.1f} µs" for _, us in rows])
    if "stdlib_hmac" in verifier:
        axis.axvline(
            2 * verifier["stdlib_hmac"]["median_us"],
            color="#dc2626",
            linestyle="--",
            linewidth=1,
            label="target: 2x the stdlib check",
        )
        axis.legend(fontsize=8)
    axis.set_xlim(0, max(us for _, us in rows) * 1.25)
    axis.set_xlabel("microseconds per token (median)")
    axis.set_title("Token verification, one fresh token per call")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_open_loop(run: Any, path: Path, title: str) -> bool:
    """Answers per second (303; refused and failed) and each second's p99, for an open-loop run."""
    if not isinstance(run, dict) or not run.get("timeline"):
        return False
    timeline = run["timeline"]
    seconds = [row["second"] for row in timeline]
    fig, axis = plt.subplots(figsize=(10, 4))
    axis.plot(seconds, [row["ok"] for row in timeline], color="#2563eb", label="303 answers per second")
    bad = [row["5xx"] + row["errors"] + row["4xx"] for row in timeline]
    axis.bar(seconds, bad, color="#dc2626", label="errors, 4xx and 5xx (503: refused at once)")
    axis.set_xlabel("second of the run")
    axis.set_ylabel("requests")
    axis.set_ylim(bottom=0)
    twin = axis.twinx()
    twin.plot(seconds, [row["p99_ms"] or 0 for row in timeline], color="#f59e0b", label="p99 latency (ms)")
    twin.plot(
        seconds,
        [row.get("max_lag_ms", 0) for row in timeline],
        color="#6b7280",
        linestyle="--",
        label="the generator's worst lag (ms): the machine, not the server",
    )
    twin.set_ylabel("ms in that second")
    twin.set_ylim(bottom=0)
    lines = axis.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    axis.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")
    axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_soak(results: dict[str, Any], path: Path) -> bool:
    soak = results.get("soak")
    if not isinstance(soak, dict):
        return False
    share = f"{soak.get('share', 0.7):.0%} of the maximum"
    return _plot_open_loop(soak, path, f"Soak: {soak['rate']:,.0f} sign-ins per second ({share}), open loop")


def plot_overload(results: dict[str, Any], path: Path) -> bool:
    run = results.get("overload")
    if not isinstance(run, dict):
        return False
    title = f"Overload: {run['rate']:,.0f} sign-ins per second ({run['share']:.1f}x the maximum), open loop"
    return _plot_open_loop(run, path, title)


# -- markdown --------------------------------------------------------------------------

BUSY_LOAD = 0.7  # a 1-minute load average above this at the start means other work shared the 2 cores
LATE_GENERATOR_MS = 3.0


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A markdown table; ``align`` has one letter per column, "r" for right-aligned."""
    marks = ["---:" if (align[i : i + 1] == "r") else "---" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def _targets(results: dict[str, Any]) -> list[str]:
    profiles = results.get("profiles") or {}
    rows = []
    for target in results.get("targets", []):
        verdict = _verdict(target["met"])
        if target["met"] is False and isinstance(profiles.get(target.get("profile", "")), dict):
            verdict += f" ([profile](#profile-{target['profile']}))"
        rows.append([target["name"], target["goal"], target["measured"], verdict])
    return _table(["Target", "Goal", "Measured", "Verdict"], rows)


def _warnings(results: dict[str, Any]) -> list[str]:
    notes = []
    load = (results.get("machine") or {}).get("load_average_at_start") or 0.0
    if load > BUSY_LOAD:
        notes.append(
            f"> **This run shared the machine with other work** (load average {load} when it started, on "
            f"{results['machine'].get('nproc')} cores): every figure is lower and noisier than on a quiet machine. "
            "Rerun `make bench` with nothing else running before reading much into it."
        )
    late = [
        _label(results, key)
        for key, _ in SERVERS
        if (run := _measured(results, key)) and run["half_rate"]["lag_ms"]["p99"] > LATE_GENERATOR_MS
    ]
    if late:
        notes.append(
            "> **The load generator itself ran late** (send lag p99 over "
            f"{LATE_GENERATOR_MS:g} ms) for: {'; '.join(late)}. Latency is counted from the scheduled time, so "
            "those percentiles include time the generator could not get the CPU."
        )
    lines: list[str] = []
    for note in notes:
        lines += [note, ""]
    return lines


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count:,} answered {status}" for status, count in sorted(statuses.items())) or "none"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in sorted(errors.items())) or "none"


def _machine(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    quick = " (BENCH_QUICK=1: short runs, a smaller large database)" if results.get("mode") == "quick" else ""
    rows = [
        ["nproc", str(m.get("nproc"))],
        ["CPU", str(m.get("cpu"))],
        ["Memory", f"{m.get('memory_gib')} GiB"],
        ["Kernel", str(m.get("kernel"))],
        ["Load average (1 min) at start / end", f"{m.get('load_average_at_start')} / {m.get('load_average_at_end')}"],
        ["Date", f"{results.get('started')} to {results.get('finished')}"],
        ["Mode", f"{results.get('mode')}{quick}"],
    ]
    versions = [[name, str(version)] for name, version in (results.get("versions") or {}).items()]
    return [*_table(["Machine", ""], rows), "", *_table(["Software", "Version"], versions)]


def _sign_in(results: dict[str, Any]) -> list[str]:
    ref = _measured(results, "reference")
    rows = []
    for key, _ in SERVERS:
        run = _measured(results, key)
        if run is None:
            continue
        half, lat = run["half_rate"], run["half_rate"]["latency_ms"]
        ratio = f"{run['max']['rate'] / ref['max']['rate']:.2f}x" if ref else "-"
        bad = sum(int(n) for status, n in half["statuses"].items() if status != "303")
        errors = sum(half["errors"].values()) + run["max"]["total_errors"]
        rows.append(
            [
                _label(results, key),
                _n(run["max"]["rate"]),
                ratio,
                _n(half["rate"]),
                _n(lat["p50"], 2),
                _n(lat["p90"], 2),
                _n(lat["p99"], 2),
                _n(lat["p999"], 2),
                _n(half["lag_ms"]["p99"], 2),
                f"{bad} / {errors}",
                _n(run.get("peak_rss_mb")),
            ]
        )
    header = [
        "Server", "Max sign-ins/s", "vs reference", "Latency run at /s", "p50 ms", "p90 ms", "p99 ms",
        "p99.9 ms", "Generator lag p99 ms", "Non-303 / errors", "Peak RSS MB",
    ]  # fmt: skip
    lines = _table(header, rows, "lrrrrrrrrrr")
    events = [
        f"- {_label(results, key)}: {run['events'].get('success', 0):,} sign-in events with result success and "
        f"{run['events'].get('failure', 0):,} with failure written during its {len(run['max']['rounds'])} wrk rounds "
        f"(wrk counted {run['max']['total_requests']:,} answers; a few more may have been in flight when wrk stopped)."
        for key, _ in SERVERS
        if (run := _measured(results, key)) and "events" in run
    ]
    if events:
        lines += ["", "Every sign-in did the whole job; the database shows it:", "", *events]
    return [*lines, "", *_commit_latency(results), *_imports(results)]


def _commit_latency(results: dict[str, Any]) -> list[str]:
    data = results.get("commit_latency")
    if not isinstance(data, dict):
        return []
    rows = [
        [
            label,
            _n(run["p50_ms"], 3),
            _n(run["p99_ms"], 2),
            _n(run["p999_ms"], 2),
            _n(run["max_ms"], 1),
            f"{run['over_5ms']:,} of {run['commits']:,}",
        ]
        for label, run in (
            (
                "WAL auto-checkpoint inside the COMMIT every 1,000 pages (SQLite's default, for comparison)",
                data["default_autocheckpoint"],
            ),
            (
                "auto-checkpoint off (billportal's setting: a thread of its own checkpoints every second)",
                data["autocheckpoint_off"],
            ),
        )
    ]
    return [
        "**The disk under a sign-in.** One sign-in-shaped transaction (single-use mark, session, event) per commit,",
        "on a copy of the 1,000-customer database with billportal's own connection settings",
        "(`bench/commit_latency.py`).",
        "The event loop waits for each commit, so this tail is a floor under the sign-in's own:",
        "",
        *_table(["SQLite", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "Commits over 5 ms"], rows, "lrrrrr"),
    ]


def _imports(results: dict[str, Any]) -> list[str]:
    data = results.get("imports")
    if not isinstance(data, dict):
        return []
    rows = [
        [
            kind,
            f"{run['rows']:,}",
            f"{run['units']:,}",
            _n(run["seconds"], 1),
            f"{run['rows_per_second']:,}",
            _n(run["again_seconds"], 1),
            f"{run['again_unchanged']:,}",
        ]
        for kind, run in data.items()
    ]
    return [
        "",
        "**CSV imports.** `billportal import` of a customers file, of an invoices file (two lines each), then of a",
        "contacts file (one a customer; each through services/contacts.py, with its audit entry),",
        "each command timed whole (start-up included) on a fresh embedded database, then the same file again,",
        "which changes nothing (`bench/imports.py`):",
        "",
        *_table(
            ["File", "Rows", "Created", "Seconds", "Rows/s", "Again: seconds", "Again: unchanged"], rows, "lrrrrrr"
        ),
    ]


def _portal(results: dict[str, Any]) -> list[str]:
    """One row per page and server: its rate, p99, CPU per request, and its ratio to the reference."""
    ref = results.get("reference")
    ref_portal = ref.get("portal", {}) if isinstance(ref, dict) else {}
    rows = []
    for page in PORTAL_PAGES:
        for key, _ in SERVERS[:3]:
            run = results.get(key)
            measured = run.get("portal", {}).get(page) if isinstance(run, dict) else None
            if not isinstance(measured, dict):
                continue
            theirs = ref_portal.get(page)
            ratio = "-"
            paired = paired_ratio(measured, theirs) if key != "reference" else None
            if paired is not None:
                ratio = f"{paired[0]:.2f}x ({paired[1]:.2f}-{paired[2]:.2f})"
            cpu = measured.get("cpu_us_per_request_median")
            rows.append(
                [
                    PORTAL_PAGES[page],
                    _label(results, key),
                    _n(measured.get("median_rate", measured["rate"])),
                    _n(measured["latency_ms"]["p99"], 1),
                    _n(cpu) if cpu else "-",
                    ratio,
                ]
            )
    header = ["Page", "Server", "Median round /s", "p99 ms", "CPU µs / request", "vs reference (spread)"]
    lines = _table(header, rows, "llrrrr")
    same = results.get("portal_same_html") or {}
    if same:
        verdict = ", ".join(f"{page}: {'identical' if ok else 'DIFFERENT'}" for page, ok in same.items())
        lines += [
            "",
            (
                "Both apps sent the same answer for the same customer (an HTML page but for its CSRF token; a PDF"
                f" but for its creation date and file id): {verdict}."
            ),
        ]
    return lines


def _lists(results: dict[str, Any]) -> list[str]:
    found = results.get("lists")
    if not isinstance(found, dict) or "lists" not in found:
        return ["Not measured."]
    on_pg = results.get("lists_postgres")
    pg = on_pg.get("lists", {}) if isinstance(on_pg, dict) else {}
    lines = [
        (
            f"{found['events']:,} sign-in events over 90 days and {found['customers']:,} customers (`bench/lists.py`);"
            " each list asked for one page at a time, one request after another: on embedded SQLite, and on"
            " PostgreSQL + Redis (the same rows copied into a private cluster, fsync on, kept under var/bench"
            " between runs)."
        ),
        "",
    ]
    if not pg:
        status = on_pg.get("status", "not measured") if isinstance(on_pg, dict) else "not measured"
        lines += [f"PostgreSQL: {status}.", ""]

    def cells(row: dict[str, Any] | None) -> list[str]:
        if not row:
            return ["-", "-"]
        bad = "" if set(row["statuses"]) == {"200"} else f" ({', '.join(row['statuses'])})"
        return [_n(row["p50_ms"], 1), _n(row["p99_ms"], 1) + bad]

    rows = [[name, f"`{row['path']}`", *cells(row), *cells(pg.get(name))] for name, row in found["lists"].items()]
    headers = ["List", "Path", "SQLite p50 ms", "SQLite p99 ms", "PostgreSQL p50 ms", "PostgreSQL p99 ms"]
    lines += _table(headers, rows, "llrrrr")
    for label, where in (("SQLite", found), ("PostgreSQL", on_pg)):
        csv = where.get("csv") if isinstance(where, dict) else None
        if isinstance(csv, dict):
            whole = "the whole log" if csv["complete"] else "until the time limit"
            lines += [
                "",
                (
                    f"CSV export of the whole log, {label}: first byte after {csv['first_byte_ms']:.0f} ms, then"
                    f" {csv['rows_per_second']:,} rows per second ({csv['rows']:,} rows, {whole})."
                ),
            ]
    if isinstance(on_pg, dict) and on_pg.get("load_seconds"):
        lines += ["", f"The PostgreSQL copy was loaded in this run ({on_pg['load_seconds']:.0f} s, by COPY)."]
    return lines


def _verifier(results: dict[str, Any]) -> list[str]:
    verifier = results.get("verifier")
    if not verifier:
        return ["Not measured."]
    base = verifier.get("stdlib_hmac", {}).get("median_us")
    names = {
        "stdlib_hmac": "minimal stdlib check (hmac, base64, json, exp)",
        "billportal_verify": "`billportal.sso.tokens.verify` (the whole policy)",
        "pyjwt_decode": '`jwt.decode(token, key, algorithms=["HS256"])`',
    }
    rows = [
        [
            label,
            f"{row['median_us']:.2f}",
            f"{row['mean_us']:.2f}",
            f"{row['min_us']:.2f}",
            f"{row['rounds']:,}",
            f"{row['median_us'] / base:.2f}x" if base else "-",
        ]
        for key, label in names.items()
        if (row := verifier.get(key))
    ]
    header = ["Function", "Median µs/token", "Mean µs", "Min µs", "Rounds", "vs stdlib check"]
    return _table(header, rows, "lrrrrr")


def _scale(results: dict[str, Any]) -> list[str]:
    datasets = results.get("datasets") or {}
    rows = []
    for key in ("billportal_small", "billportal_large"):
        run = _measured(results, key)
        meta = next((m for m in datasets.values() if (m["customers"] > 1000) == (key == "billportal_large")), None)
        if run is None or meta is None:
            continue
        built = f"{meta['build_seconds_when_built']:.0f} s" + (" (cached)" if meta["cached"] else "")
        portal = run.get("portal") or {}
        rows.append(
            [
                f"{meta['customers']:,} customers, {meta['invoices']:,} invoices",
                f"{meta['size_mb']:,.0f} MB",
                built,
                _n(run["max"]["rate"]),
                _n(run["half_rate"]["latency_ms"]["p99"], 2),
                _n(portal.get("invoices", {}).get("rate")),
                _n(portal.get("my_account", {}).get("rate")),
            ]
        )
    header = ["Database", "Size", "Built in", "Sign-ins/s", "p99 ms at half max", "Invoice list /s", "My Account /s"]
    return _table(header, rows, "lrrrrrr")


def _memory(results: dict[str, Any]) -> list[str]:
    rows = [
        [_label(results, key), _n(run.get("rss_at_start_mb")), _n(run["peak_rss_mb"])]
        for key, _ in SERVERS
        if isinstance(run := results.get(key), dict) and "peak_rss_mb" in run
    ]
    soak = results.get("soak")
    if isinstance(soak, dict):
        rows.append(
            ["billportal, 1k customers, through the soak", _n(soak.get("rss_at_start_mb")), _n(soak["peak_rss_mb"])]
        )
    if not rows:
        return ["Not measured."]
    lines = [
        "Resident memory of the one worker: VmRSS once it answered its first request, and VmHWM (the peak) after",
        "its runs. At start a worker holds mostly the code it imported; the difference is what its runs added",
        "(caches such as SQLite's page cache; the reference imports billportal's app to capture its pages and SQL,",
        "so it starts as large). The soak row is the longest run.",
        "",
        *_table(["Server", "At start MB", "Peak MB"], rows, "lrr"),
    ]
    cache = results.get("sqlite_cache_mib")
    if isinstance(cache, float | int):
        lines += [
            "",
            f"billportal's SQLite connection may keep up to {cache:g} MiB of pages in its cache (`PRAGMA cache_size`).",
        ]
    return lines


def _load_and_crash(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    soak = results.get("soak")
    if isinstance(soak, dict):
        lat = soak["latency_ms"]
        lines += [
            (
                f"**Soak**: {soak['seconds']:.0f} s of fresh sign-ins at {soak['rate']:,.0f} per second "
                f"({soak.get('share', 0.7):.0%} of the maximum, {soak.get('max_rate_just_before', 0):,.0f}/s, measured "
                f"on the same server just before), open loop: {soak['completed']:,} of {soak['planned']:,} answered ("
                f"{_statuses(soak['statuses'])}), errors: {_errors(soak['errors'])}; p50 {lat['p50']:.2f} ms, "
                f"p99 {lat['p99']:.2f} ms, p99.9 {lat['p999']:.2f} ms, max {lat['max']:.1f} ms; peak RSS "
                f"{soak['peak_rss_mb']:.0f} MB. Verdict: {'**no error, no 5xx**' if soak['ok'] else '**FAILED**'}."
            ),
            "",
            "![Soak timeline](bench-soak.png)",
            "",
        ]
    run = results.get("overload")
    if isinstance(run, dict):
        lat = run["latency_ms"]
        lines += [
            (
                f"**Overload**: {run['seconds']:.0f} s of fresh sign-ins at {run['rate']:,.0f} per second "
                f"({run['share']:.1f}x the maximum of {run['max_rate_just_before']:,.0f}/s measured just before), "
                f"open loop from up to {run['connections']:,} connections: {run['completed']:,} of "
                f"{run['planned']:,} answered ({_statuses(run['statuses'])}), errors: {_errors(run['errors'])}, "
                f"answers neither 303 nor 503 with Retry-After: {run['failed_checks']}; sign-ins "
                f"{run['goodput']:,.0f} per second ({run['goodput_share']:.0%} of the maximum); every answer "
                f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, max {lat['max']:.1f} ms. Verdict: "
                f"{'**refused at once, not queued**' if run['ok'] else '**FAILED**'}."
            ),
            "",
            "![Overload timeline](bench-overload.png)",
            "",
        ]
    crash = results.get("crash")
    if isinstance(crash, dict):
        verdict = "**every session survived**" if crash["ok"] else "**SESSIONS LOST**"
        lines.append(
            f"**kill -9**: sign-ins at {crash['rate']:,.0f} per second; after {crash['kill_after_s']:.0f} s the worker "
            f"got SIGKILL (no shutdown). {crash['answered_303_before_kill']:,} sign-ins had been answered 303 before "
            f"it; {crash['lost_in_flight']:,} were in flight and lost their connection (never answered, so never "
            "promised). After a restart on the same files, each kept cookie was sent to My Account: "
            f"{crash['still_signed_in']:,} of {crash['answered_303_before_kill']:,} showed the right customer "
            f"({_statuses(crash['check_statuses'])}; errors: {_errors(crash['check_errors'])}). Verdict: {verdict}."
        )
    return lines or ["Not measured."]


def _postgres(results: dict[str, Any]) -> list[str]:
    pg = results.get("postgres_redis")
    if not isinstance(pg, dict):
        return ["Not measured: that part of the run failed (see Errors)."]
    if pg.get("status") != "measured":
        return [f"**{pg.get('status', 'not measured')}**."]
    return [
        f"Measured on {pg['where']}, with the 1,000-customer data and `BILLPORTAL_DATABASE_URL` and",
        '`BILLPORTAL_REDIS_URL` set: see the row "billportal, PostgreSQL + Redis" in the sign-in table.',
    ]


def _profile(name: str, prof: dict[str, Any]) -> list[str]:
    lines = [f'<a id="profile-{name}"></a>', "", f"### Profile: {name}", ""]
    if prof.get("status") != "recorded":
        return [*lines, f"Not recorded: {prof.get('status')}.", ""]
    where = f" ({prof['dataset']})" if prof.get("dataset") else ""
    if prof.get("idle_included"):
        kind = (
            "waits included (`--idle`): a sample in the event loop itself means the worker had nothing to run "
            f"or was inside uvloop's C code ({prof['loop_share']:.0%} of samples)"
        )
    elif prof.get("dataset"):
        busy = prof["samples_seconds"] / prof["seconds"] if prof.get("seconds") else 0.0
        kind = f"on-CPU samples only; the worker was running for {busy:.0%} of the time"
    else:
        kind = "samples inside the timed loop only (imports left out)"
    lines += [
        (
            f"py-spy for {prof['seconds']} s under {prof['load']}{where}; {kind}. "
            f"Speedscope file: `{prof['path']}` (open it at speedscope.app)."
        ),
        "",
        *_table(["Self time", "Function"], [[f"{s:.1%}", f"`{f}`"] for f, s in prof["self_top"][:12]], "rl"),
        "",
        *_table(["Self time", "Hot line"], [[f"{s:.1%}", f"`{f}`"] for f, s in prof.get("hot_lines", [])[:8]], "rl"),
        "",
        *_table(["Self time", "Source file"], [[f"{s:.1%}", f"`{f}`"] for f, s in prof["by_file"][:10]], "rl"),
        "",
        *_table(
            ["On the stack", "billportal function"], [[f"{s:.1%}", f"`{f}`"] for f, s in prof["inclusive"][:12]], "rl"
        ),
        "",
    ]
    return lines


def _profiles(results: dict[str, Any]) -> list[str]:
    profiles = {k: v for k, v in (results.get("profiles") or {}).items() if isinstance(v, dict)}
    if not profiles:
        return ["Every target was met: no profile was needed (`BENCH_PROFILE=1` records them anyway)."]
    lines: list[str] = []
    for name, prof in sorted(profiles.items()):
        lines += _profile(name, prof)
    return lines


METHOD = """\
- **Servers**: each runs as `billportal serve` runs in production: one uvicorn worker (httptools, uvloop),
  started by the harness on 127.0.0.1 and a free port, on its own fresh copy of the database. The reference
  (`bench/reference_app.py`) is served by the same `billportal.server.serve`, so uvicorn's settings, logging
  and access log are the same; only the app differs. Access log: **{access}**.
- **Sign-in**: every request carries a fresh, valid, single-use token (`sub`, `iss`, `iat`, `exp`, a unique
  `jti`) for a customer drawn at random from the whole database; the bench company has every policy rule on
  (required `jti`, issuer list, maximum lifetime, `iat` cutoff, leeway). Tokens are made before each run and
  read by `bench/requests.lua`, each wrk thread its own share, so none is sent twice. Sessions and sign-in
  events are written as in production, to embedded SQLite (WAL, group commit).
- **Maximum**: `wrk -t2 -c16 -d{max_s}s` (closed loop), {rounds} rounds per server after a {warm_s} s warm-up.
  The servers run side by side (an idle one costs nothing) and their rounds take turns, so a busy moment on
  the machine hurts them alike. A ratio to a reference is the median of the rounds' ratios (each round of
  billportal against the reference's round beside it), with their lowest and highest; the rate shown is each
  server's median round, and the CPU per request is the server process's user + system time over a round
  divided by its requests (the median round). All rounds are kept in `var/bench/results.json`. The portal
  pages are measured the same way, `-d{portal_s}s` a round.
- **Latency**: `bench/loadgen.py`, an open-loop generator on raw asyncio sockets (wrk2 is not in Debian):
  requests go out on a fixed schedule at half of that server's maximum for {rate_s} s (after a warm-up at that
  rate), over a pool of keep-alive connections that grows rather than make a request wait. Latency counts from
  the scheduled send time, so a stall cannot hide (no coordinated omission); "generator lag" is how late the
  generator itself sent (its timer ticks in milliseconds).
- **The references** (`bench/reference_app.py`) do the same essential work with the same libraries and
  nothing more. Sign-in: the least correct HS256 check (standard library HMAC, `exp`, `sub`), `SELECT` the
  customer, then the same durable rows (single-use mark, session, sign-in event): on SQLite through a minimal
  group commit on a connection with billportal's pragmas (commits at least 2 ms apart, as billportal's are); on
  PostgreSQL through a psycopg pool of 20 as one statement of three CTE inserts, committed. Pages: the session
  read from the database, then billportal's own SQL for that page (captured from its engine once at start, with
  its parameters) run on the raw `sqlite3` connection, every row fetched, and billportal's own templates
  rendered from the records billportal's views produced; the report checks both send the same HTML but for the
  CSRF token.
- **Portal**: 16 customers with 60 invoices each are signed in; wrk asks for `/` or `/invoices` (page 1, 25
  rows) with their cookies.
- **Verifier**: pytest-benchmark (`bench/test_verifier.py`), 1,000 distinct tokens in turn; medians compared.
- **Memory**: VmHWM from `/proc/PID/status` of the worker after its runs.
- **Start-up**: `billportal --help` (median of 7) and `billportal serve` from exec until it answers its first page
  (`/signed-out` on a portal host, which builds the portal site), then its VmRSS after 2 s idle (each the median
  of 5 starts),
  and again after one sign-in (which unseals the SSO key and so loads AES: shown beside the idle figure).
  The servers run with `PYTHONDONTWRITEBYTECODE=1`; the run compiles `src/billportal` once first, as installing
  a wheel does.
- **Soak, overload and crash**: the open-loop generator at 70% (soak, which must also keep p99 under 50 ms),
  150% (overload, from up to 1,024 connections, more than the 256 requests a process takes at once, so that what
  queues is the server's and not the generator's) and 80% (crash) of billportal's maximum. The soak and the
  overload measure that maximum on their own server just before (wrk, closed loop), since the machine's speed
  drifts within a run. For the crash, `kill -9` half way, a restart on the same files, and every cookie answered
  before the kill sent to My Account.
- **The disk** is synced after each database copy and before each open-loop run, so that the kernel's writeback of
  the run's own dataset copies (gigabytes) does not stall a server's writes in mid-measurement.
- The machine has 2 cores: the load tools and the server share them, for billportal and the reference alike.
"""


def markdown(results: dict[str, Any], plots: dict[str, bool]) -> str:
    d = results.get("durations", {})
    method = METHOD.format(
        access="on (uvicorn's access log, redacted, written to a file)" if results.get("access_log") else "off",
        max_s=round(d.get("max_throughput", 0)),
        warm_s=_n(d.get("warmup")),
        rate_s=_n(d.get("fixed_rate")),
        portal_s=_n(d.get("portal")),
        rounds=d.get("rounds", 1),
    )
    images = {
        "signin": "![Sign-in throughput and latency](bench-signin.png)",
        "latency": "![Sign-in latency by percentile](bench-latency.png)",
        "portal": "![Portal pages](bench-portal.png)",
        "verifier": "![Verifier](bench-verifier.png)",
    }

    def image(name: str) -> list[str]:
        return [images[name], ""] if plots.get(name) else []

    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`; `BENCH_QUICK=1 make bench` for a two-minute check), which",
        "builds or reuses the databases under `var/bench/`, runs every measurement below in one go on this machine",
        "and rewrites this page and the `docs/bench-*.png` plots. Do not edit it by hand: rerun it.",
        "",
        *_warnings(results),
        "## Targets",
        "",
        *_targets(results),
        "",
        "## Machine and versions",
        "",
        *_machine(results),
        "",
        "## How it is measured",
        "",
        method,
        "## Sign-in",
        "",
        *_sign_in(results),
        "",
        *image("signin"),
        *image("latency"),
        "## The portal",
        "",
        *_portal(results),
        "",
        *image("portal"),
        "## The verifier",
        "",
        *_verifier(results),
        "",
        *image("verifier"),
        "## Data scale",
        "",
        *_scale(results),
        "",
        "## The dashboard's and the API's lists at scale",
        "",
        *_lists(results),
        "",
        "## Memory",
        "",
        *_memory(results),
        "",
        "## Load and crash",
        "",
        *_load_and_crash(results),
        "",
        "## PostgreSQL + Redis",
        "",
        *_postgres(results),
        "",
        "## Profiles",
        "",
        *_profiles(results),
    ]
    errors = results.get("errors") or {}
    if errors:
        out += ["## Errors", "", "These parts of the run failed; their tracebacks are in `var/bench/logs/`:", ""]
        out += [f"- {name}: {message}" for name, message in errors.items()]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_report(results: dict[str, Any], docs: Path = DOCS) -> list[Path]:
    docs.mkdir(parents=True, exist_ok=True)
    plotters = {
        "signin": plot_sign_in,
        "latency": plot_latency_curve,
        "portal": plot_portal,
        "verifier": plot_verifier,
        "soak": plot_soak,
        "overload": plot_overload,
    }
    written: list[Path] = []
    plots: dict[str, bool] = {}
    for name, plot in plotters.items():
        path = docs / f"bench-{name}.png"
        plots[name] = plot(results, path)
        if plots[name]:
            written.append(path)
    page = docs / "benchmarks.md"
    page.write_text(markdown(results, plots), encoding="utf-8")
    return [page, *written]


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else VAR / "results.json"
    for path in write_report(json.loads(source.read_text(encoding="utf-8"))):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
