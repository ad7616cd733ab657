"""Colours as ``#rrggbb`` and their WCAG contrast: the accent colour's one set of rules."""

from __future__ import annotations

import re
from typing import Final

HEX_COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}")
WHITE: Final = (255, 255, 255)
READABLE: Final = 4.5  # WCAG AA contrast for body text


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` as its three channels (the caller checked it with :data:`HEX_COLOR`)."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def hex_color(channels: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*channels)
