"""``billportal import customers|invoices|contacts FILE --tenant T``: CSV imports too large for the dashboard.

The file is read whole and checked before anything is written (encoding, header,
each row's shape); then its customers, invoices or contacts are written in batches, one
transaction each (``--batch``). A batch with a refused row is rolled back whole and
the batches after it are only checked, so every error of the file is said at once,
one line each on stderr, and the exit status is 1. Importing is idempotent: run the
fixed file again and what was written before is left as it is. The summary is JSON
on stdout; a progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services import imports
from billportal.services.audit import CLI
from billportal.storage.store import Store


def register(commands: Any) -> None:
    command = commands.add_parser("import", help="import customers, invoices or contacts from a CSV file")
    command.add_argument("kind", choices=imports.KINDS, help="what the file holds")
    command.add_argument("file", metavar="FILE", help="the CSV file (UTF-8, a header row first); '-' reads stdin")
    command.add_argument("--tenant", required=True, help="the company's username")
    command.add_argument("--check", action="store_true", help="only check the file: write nothing")
    command.add_argument(
        "--batch",
        type=int,
        default=imports.BATCH_UNITS,
        metavar="N",
        help=f"customers, invoices or contacts per transaction (default {imports.BATCH_UNITS})",
    )
    command.set_defaults(handler=import_file)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(imports.MAX_FILE_BYTES + 1)
    path = Path(name)
    try:
        if path.stat().st_size > imports.MAX_FILE_BYTES:
            raise CommandError(f"{name[:200]}: larger than {imports.MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{name[:200]}: cannot be read ({exc.strerror or type(exc).__name__})") from None


class Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal (at most ten times a second)."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.shown = stream.isatty()
        self.drawn = 0.0
        self.started = time.monotonic()

    def __call__(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.shown and (now - self.drawn >= 0.1 or self.done >= self.total):
            self.drawn = now
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 30)
            rate = self.done / max(now - self.started, 1e-6)
            self.stream.write(f"\r[{bar:<30}] {self.done:,}/{self.total:,} rows {share:4.0%} {rate:,.0f}/s")
            self.stream.flush()

    def end(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


async def import_file(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    if not 1 <= args.batch <= 10_000:
        raise CommandError("--batch must be from 1 to 10000")
    company = await company_named(store, args.tenant)
    parsed = imports.parse(_read(args.file), args.kind)
    rows = sum(len(unit.rows) for unit in parsed.units)
    progress = Progress(rows, sys.stderr)
    try:
        report = await imports.run(
            store,
            company,
            parsed,
            now=system_clock(),
            write=not args.check,
            actor=CLI,
            batch_units=args.batch,
            progress=progress,
        )
    finally:
        progress.end()
    for line in imports.errors(parsed):
        print(f"billportal: error: {line}", file=sys.stderr)
    print_json({"kind": args.kind, "rows": rows, "checked_only": bool(args.check), **report.as_dict()})
    return 1 if report.refused else 0
