"""What every CLI command shares: its error type, JSON output, and lookups."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from billportal.core.config import Settings
from billportal.sso.tokens import parse_customer_id
from billportal.storage.records import Company
from billportal.storage.store import Store

# A command: async (args, store, settings) -> exit status. Registered with
# parser.set_defaults(handler=...); store is None for commands that set
# needs_store=False.
Handler = Callable[[argparse.Namespace, Store, Settings], Awaitable[int]]


class CommandError(Exception):
    """A user error: printed as one line on stderr, exit status 2."""


# Said in the --help of every argument that takes a secret.
STDIN_OR_ENV_HELP = (
    "'-' reads it from stdin, 'env:NAME' from the environment variable NAME; given as it is, "
    "it shows in the process list (ps) to other users of the machine"
)


def secret_arg(value: str, option: str) -> str:
    """A secret given on the command line: itself, ``-`` for one line of stdin, ``env:NAME`` for ``$NAME``."""
    if value == "-":
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            raise CommandError(f"{option} -: nothing was read from stdin")
        return secret
    if value.startswith("env:"):
        name = value[4:]
        secret = os.environ.get(name, "") if name else ""
        if not secret:
            raise CommandError(f"{option} {value[:80]}: that environment variable is not set or empty")
        return secret
    return value


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


async def company_named(store: Store, username: str) -> Company:
    company = await store.company(username)
    if company is None:
        raise CommandError(f"no company with username {username[:63]!r}")
    return company


def customer_id_arg(value: str) -> int:
    customer_id = parse_customer_id(value)
    if customer_id is None:
        raise CommandError(f"not a customer id: {value[:30]!r} (a positive whole number)")
    return customer_id
