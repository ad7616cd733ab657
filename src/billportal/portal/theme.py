"""The company's accent colour as CSS, with text colours that stay readable on it."""

from __future__ import annotations

from typing import Final

from billportal.core.colors import HEX_COLOR, READABLE, contrast, hex_color, rgb

DEFAULT_ACCENT: Final = "#2563eb"


def theme_css(accent: str) -> str:
    """CSS variables: ``--accent``, ``--on-accent`` (text on it) and ``--accent-ink`` (links on white).

    A company may pick a light accent: links and focus rings then use a darker
    shade of it, so that they keep a 4.5:1 contrast on the white page.
    """
    if not HEX_COLOR.fullmatch(accent):
        accent = DEFAULT_ACCENT
    channels = rgb(accent)
    white, dark = (255, 255, 255), (17, 24, 39)
    on_accent = "#ffffff" if contrast(channels, white) >= READABLE else hex_color(dark)
    ink = channels
    while contrast(ink, white) < READABLE:
        ink = (int(ink[0] * 0.9), int(ink[1] * 0.9), int(ink[2] * 0.9))
    return f":root {{ --accent: {accent.lower()}; --on-accent: {on_accent}; --accent-ink: {hex_color(ink)}; }}\n"
