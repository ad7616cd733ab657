"""``billportal keys reencrypt``: finish a master key rotation."""

from __future__ import annotations

import argparse
from typing import Any

from billportal.cli._common import CommandError, print_json
from billportal.config import Settings
from billportal.sso.keys import SSOKeyError
from billportal.storage.masterkeys import reencrypt_sso_keys
from billportal.storage.store import Store


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="the server's master key").add_subparsers(dest="action", required=True)
    reencrypt = keys.add_parser(
        "reencrypt",
        help="re-seal every SSO key under BILLPORTAL_MASTER_KEY, reading with BILLPORTAL_PREVIOUS_MASTER_KEYS",
    )
    reencrypt.set_defaults(handler=keys_reencrypt)


async def keys_reencrypt(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del args
    try:
        result = await reencrypt_sso_keys(store.backend, settings.master_key, settings.previous_master_keys)
    except SSOKeyError as exc:
        raise CommandError(f"{exc}; no key was changed") from None
    if store.company_cache is not None:
        await store.company_cache.drop_all()  # shared copies hold the keys as sealed before
    print_json(
        {
            "resealed": result.resealed,
            "already_current": result.already_current,
            "master_key_id": result.master_key_id,
        }
    )
    return 0
