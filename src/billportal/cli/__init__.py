"""The ``billportal`` command.

Each command module has ``register(subparsers)``, which sets either
``handler`` (an async function of args, store and settings, run with an open
store) or ``run`` (a plain function of args and settings, for commands that
own the process, such as ``serve``). Every error is one line on stderr and a
non-zero exit; output meant for programs is JSON on stdout.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billportal.cli._common import Handler
    from billportal.core.config import Settings

# Every top-level command: the module under billportal.cli that registers it, and its help. Only the
# module of the command being run is imported (``billportal --help`` imports none), so that a quick
# command does not load the whole server first. A test checks this table against what the modules
# register.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("server", "run the server"),
    "demo": ("server", "seed the demo company, print a sign-in link and serve"),
    "db": ("server", "database"),
    "tenant": ("tenants", "companies"),
    "customer": ("tenants", "customers"),
    "company": ("company", "a company's settings"),
    "sso-url": ("sso", "print a sign-in URL for a customer"),
    "sso-explain": ("sso", "say whether a token would sign in now, and why not"),
    "email-sign-in": ("sign_in", "email sign-in for a company's customers (on or off)"),
    "master-key": ("master_keys", "the server's master key (it seals SSO keys at rest)"),
    "admin": ("admins", "dashboard admins"),
    "sso-key": ("sso_keys", "a company's SSO keys"),
    "api-key": ("api_keys", "a company's REST API keys"),
    "sessions": ("sessions", "customer and admin sessions"),
    "payments": ("payments", "a company's online payments"),
    "autopay": ("payments", "AutoPay"),
    "webhooks": ("webhooks", "a company's webhook endpoints, and delivering events"),
    "import": ("imports", "import customers, invoices or contacts from a CSV file"),
    "mail": ("mail", "email: a company's choices, its message log, statements, sending"),
}
ALIASES: dict[str, str] = {"keys": "master-key"}


def command_module(name: str) -> ModuleType:
    """The module under billportal.cli that registers the command ``name``."""
    return importlib.import_module(f"billportal.cli.{COMMANDS[name][0]}")


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every command's in full, or only ``command``'s (the others by name)."""
    root = argparse.ArgumentParser(prog="billportal", description="billportal: a billing portal with SSO links")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = ALIASES.get(command or "", command)
    loaded: set[str] = set()
    for name, (module, text) in COMMANDS.items():
        if module in loaded:
            continue
        if command is None or command == name or (command in COMMANDS and COMMANDS[command][0] == module):
            command_module(name).register(commands)
            loaded.add(module)
        else:
            aliases = [alias for alias, target in ALIASES.items() if target == name]
            commands.add_parser(name, aliases=aliases, help=text, add_help=False)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    # Loading the modules builds a few hundred thousand objects that live as long as the process; the
    # collector would walk them again and again while they load (a sixth of serve's start-up).
    gc.disable()
    arguments = sys.argv[1:] if argv is None else list(argv)
    named = next((word for word in arguments if not word.startswith("-")), None)
    args = parser(named if named in COMMANDS or named in ALIASES else "").parse_args(arguments)

    import asyncio

    from billportal.cli._common import CommandError
    from billportal.core.config import ConfigError, Settings
    from billportal.core.crypto import SealError
    from billportal.core.errors import DatabaseDamaged, Refused, StorageUnavailable
    from billportal.web.logging import redact_all

    gc.enable()  # loaded (serve keeps it off a while longer: cli/server.py)
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
    from billportal.storage import open_store

    store = open_store(settings)
    try:
        return await handler(args, store, settings)
    finally:
        await store.aclose()
