"""The API's fields and shapes: billportal.web.shapes, which the dashboard's forms share."""

from __future__ import annotations

from billportal.web.shapes import Components, Field, Invalid, Shape, check, check_object, parse, read_only

__all__ = ["Components", "Field", "Invalid", "Shape", "check", "check_object", "parse", "read_only"]
