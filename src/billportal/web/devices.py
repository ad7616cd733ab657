"""A coarse description of a browser from its User-Agent ("Firefox on Windows"), for a customer's Security page.

Only the browser's family and the system's are kept: no versions, no device model, nothing that
fingerprints one person. Anything not recognised is "Unknown browser" or "unknown system".
"""

from __future__ import annotations

from typing import Final

# Checked in order: several browsers name others in their User-Agent (Edge says Chrome and Safari).
_BROWSERS: Final = (
    ("Edg", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chromium", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS: Final = (
    ("iPad", "iPadOS"),
    ("iPhone", "iOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)
MAX_DEVICE = 100


def describe(user_agent: str) -> str:
    """``"Chrome on Android"``; ``""`` when the browser sent no User-Agent."""
    if not user_agent.strip():
        return ""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "Unknown browser")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "unknown system")
    return f"{browser} on {system}"[:MAX_DEVICE]
