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
import os
import sys
import traceback
from collections.abc import Sequence

from billportal.cli import (
    admins,
    api_keys,
    company,
    master_keys,
    payments,
    server,
    sessions,
    sso,
    sso_keys,
    tenants,
)
from billportal.cli._common import CommandError, Handler
from billportal.core.config import ConfigError, Settings
from billportal.core.crypto import SealError
from billportal.core.errors import DatabaseDamaged, Refused, StorageUnavailable
from billportal.storage import open_store
from billportal.web.logging import redact_all

COMMAND_MODULES = (server, tenants, company, sso, master_keys, admins, sso_keys, api_keys, sessions, payments)


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
    except (CommandError, ConfigError, DatabaseDamaged, Refused, SealError) as exc:
        print(f"billportal: error: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:
        cause = exc.__cause__
        detail = f" ({type(cause).__name__}: {str(cause).splitlines()[0][:200]})" if cause and str(cause) else ""
        print(f"billportal: error: {exc}{redact_all(detail)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback with BILLPORTAL_DEBUG=1
        print(f"billportal: internal error: {type(exc).__name__}: {redact_all(str(exc))[:300]}", file=sys.stderr)
        if os.environ.get("BILLPORTAL_DEBUG") == "1":
            traceback.print_exc()
        return 70  # EX_SOFTWARE


async def _with_store(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    try:
        return await handler(args, store, settings)
    finally:
        store.close()
