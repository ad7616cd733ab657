"""The time: integer UNIX seconds (tests pass a clock of their own that they can move)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def system_clock() -> int:
    """Now, in whole UNIX seconds."""
    return int(time.time())
