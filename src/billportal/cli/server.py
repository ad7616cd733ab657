"""``billportal serve``, ``billportal demo`` and ``billportal db upgrade``."""

from __future__ import annotations

import argparse
from typing import Any

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


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from billportal.server import serve

    return serve(settings, host=args.host, port=args.port, workers=args.workers)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from billportal.demo import run_demo as demo

    return demo(settings, host=args.host, port=args.port, serve_after=not args.no_serve)


async def db_upgrade(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del args, store  # opening the store ran the migrations
    print(f"the {settings.effective_database_url.split(':', 1)[0]} database is at the newest schema")
    return 0
