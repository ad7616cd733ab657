"""The company's accent colour as CSS, with text colours that stay readable on it."""

from __future__ import annotations

import re
from typing import Final

DEFAULT_ACCENT: Final = "#2563eb"
_HEX: Final = re.compile(r"#[0-9a-fA-F]{6}")
_READABLE: Final = 4.5  # WCAG AA contrast for body text


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


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def theme_css(accent: str) -> str:
    """CSS variables: ``--accent``, ``--on-accent`` (text on it) and ``--accent-ink`` (links on white).

    A company may pick a light accent: links and focus rings then use a darker
    shade of it, so that they keep a 4.5:1 contrast on the white page.
    """
    if not _HEX.fullmatch(accent):
        accent = DEFAULT_ACCENT
    rgb = _rgb(accent)
    white, dark = (255, 255, 255), (17, 24, 39)
    on_accent = "#ffffff" if contrast(rgb, white) >= _READABLE else _hex(dark)
    ink = rgb
    while contrast(ink, white) < _READABLE:
        ink = (int(ink[0] * 0.9), int(ink[1] * 0.9), int(ink[2] * 0.9))
    return f":root {{ --accent: {accent.lower()}; --on-accent: {on_accent}; --accent-ink: {_hex(ink)}; }}\n"
