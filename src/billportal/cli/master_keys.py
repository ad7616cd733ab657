"""``billportal master-key reencrypt``: finish a master key rotation (the master key seals SSO keys at rest)."""

from __future__ import annotations

import argparse
from typing import Any

from billportal.cli._common import CommandError, print_json
from billportal.core.config import Settings
from billportal.core.crypto import SealError
from billportal.services.master_keys import reencrypt_sso_keys
from billportal.storage.store import Store


def register(commands: Any) -> None:
    # "keys" is the name of earlier releases, kept so that their runbooks still work.
    master_key = commands.add_parser(
        "master-key", aliases=["keys"], help="the server's master key (it seals SSO keys at rest)"
    ).add_subparsers(dest="action", required=True)
    reencrypt = master_key.add_parser(
        "reencrypt",
        help="re-seal every SSO key under BILLPORTAL_MASTER_KEY, reading with BILLPORTAL_PREVIOUS_MASTER_KEYS",
    )
    reencrypt.set_defaults(handler=reencrypt_command)


async def reencrypt_command(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del args, settings
    try:
        result = await reencrypt_sso_keys(store)
    except SealError as exc:
        raise CommandError(f"{exc}; no key was changed") from None
    print_json(
        {
            "resealed": result.resealed,
            "already_current": result.already_current,
            "master_key_id": result.master_key_id,
            "gateway_secrets_resealed": result.gateway_secrets_resealed,
            "webhook_secrets_resealed": result.webhook_secrets_resealed,
        }
    )
    return 0
