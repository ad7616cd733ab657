"""``billportal serve``, ``billportal demo`` and ``billportal db upgrade``."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any

from billportal.cli._common import CommandError
from billportal.core.config import Settings
from billportal.storage.store import Store


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=run_serve)

    demo = commands.add_parser("demo", help="seed the demo company, print a sign-in link and serve")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-serve", action="store_true", help="seed and print the link, then exit")
    demo.set_defaults(run=run_demo)

    db = commands.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    upgrade = db.add_parser("upgrade", help="run the migrations (the server also runs them at start)")
    upgrade.set_defaults(handler=db_upgrade)
    backup = db.add_parser("backup", help="copy the SQLite database to FILE (safe while the server runs)")
    backup.add_argument("file", type=Path, metavar="FILE")
    backup.set_defaults(run=db_backup)
    restore = db.add_parser(
        "restore", help="replace the SQLite database by the backup FILE (checked first; only while stopped)"
    )
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.set_defaults(run=db_restore)


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    gc.disable()  # the server loads with the collector off, too; serve() turns it back on
    from billportal.server import serve

    return serve(settings, host=args.host, port=args.port, workers=args.workers)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from billportal.demo import run_demo as demo

    return demo(settings, host=args.host, port=args.port, serve_after=not args.no_serve)


async def db_upgrade(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del args, store  # opening the store ran the migrations
    print(f"the {settings.effective_database_url.split(':', 1)[0]} database is at the newest schema")
    return 0


def _sqlite_path(settings: Settings, doing: str) -> Path:
    url = settings.effective_database_url
    if not url.startswith("sqlite:///"):
        raise CommandError(f"db {doing} is for the embedded SQLite database; use pg_dump/pg_restore for PostgreSQL")
    return Path(url.removeprefix("sqlite:///"))


def db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from billportal.storage.sqlite_files import backup

    database = _sqlite_path(settings, "backup")
    try:
        size = backup(database, args.file)
    except (FileNotFoundError, FileExistsError) as exc:
        raise CommandError(str(exc)) from None
    print(f"backed up {database} to {args.file} ({size} bytes, integrity checked)")
    return 0


def db_restore(args: argparse.Namespace, settings: Settings) -> int:
    from billportal.storage.sqlite_files import restore

    database = _sqlite_path(settings, "restore")
    try:
        kept = restore(database, args.file)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    except BlockingIOError:
        raise CommandError(
            f"{database} is open in a running billportal (a server or a command): stop it, then restore"
        ) from None
    print(f"restored {database} from {args.file}")
    if kept is not None:
        print(f"the database it replaced is kept as {kept}")
    return 0
