"""The portal's styles make no left/right assumptions, so a right-to-left language can be added."""

from __future__ import annotations

import re
from importlib import resources


def test_the_portal_css_uses_logical_properties_only() -> None:
    css = (resources.files("billportal") / "static" / "portal.css").read_text()
    physical = re.findall(r"[\w-]*\b(?:left|right)\b[\w-]*", css)
    assert physical == []
