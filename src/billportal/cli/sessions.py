"""``billportal sessions prune``: delete the customer and admin sessions that are over."""

from __future__ import annotations

import argparse
from typing import Any

from billportal.cli._common import print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.storage.store import Store


def register(commands: Any) -> None:
    sessions = commands.add_parser("sessions", help="customer and admin sessions").add_subparsers(
        dest="action", required=True
    )
    prune = sessions.add_parser(
        "prune",
        help="delete the sessions past their absolute end or idle timeout (each server also does so every 10 minutes)",
    )
    prune.set_defaults(handler=prune_command)


async def prune_command(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del args
    ended = await store.prune_sessions(system_clock(), settings.session_idle_seconds)
    print_json({"pruned": ended})
    return 0
