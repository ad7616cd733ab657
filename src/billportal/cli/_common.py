"""What every CLI command shares: its error type, JSON output, and lookups."""

from __future__ import annotations

import argparse
import json
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
