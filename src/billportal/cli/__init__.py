"""The ``billportal`` command.

Each command module has ``register(subparsers)``, which sets either
``handler`` (an async function of args, store and settings, run with an open
store) or ``run`` (a plain function of args and settings, for commands that
own the process, such as ``serve``). Every error is one line on stderr and a
non-zero exit; output meant for programs is JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from billportal.cli import admins, apikeys, keys, masterkeys, server, sso, tenants
from billportal.cli._common import CommandError, Handler
from billportal.config import ConfigError, Settings
from billportal.storage import open_store
from billportal.storage.errors import Conflict, NotFound, StorageUnavailable

COMMAND_MODULES = (server, tenants, sso, masterkeys, admins, keys, apikeys)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="billportal", description="billportal: a billing portal with SSO links")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if hasattr(args, "run"):
            status: int = args.run(args, settings)
            return status
        return asyncio.run(_with_store(args.handler, args, settings))
    except (CommandError, ConfigError, Conflict, NotFound, StorageUnavailable) as exc:
        print(f"billportal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _with_store(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    try:
        return await handler(args, store, settings)
    finally:
        store.close()
