"""The API reference at ``/api/v1/docs``: server-rendered HTML from the OpenAPI document itself.

No script and no third-party resources: the page loads one stylesheet from
this host, so the strict Content-Security-Policy every page gets applies as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from markupsafe import Markup, escape

from billportal.api.errors import ERROR_CODES
from billportal.api.openapi import API_PREFIX, INTRODUCTION, openapi_document

STYLESHEET: Final = Path(__file__).resolve().parent.parent / "static" / "api-docs.css"


@dataclass(frozen=True, slots=True)
class Row:
    """One member of a schema, as the reference lists it."""

    name: str
    type: str
    required: bool
    doc: str


@dataclass(frozen=True, slots=True)
class OperationView:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    params: list[Row]
    body: str | None
    body_rows: list[Row]
    answer: str
    answer_status: str
    errors: list[str]


_STRONG: Final = re.compile(r"\*\*(.+?)\*\*")
_CODE: Final = re.compile(r"`([^`]+)`")


def inline(text: str) -> Markup:
    """The introduction's ``**bold**`` and ```code``` as HTML; everything else escaped."""
    escaped = str(escape(text))
    html = _CODE.sub(r"<code>\1</code>", _STRONG.sub(r"<strong>\1</strong>", escaped))
    return Markup(html)  # noqa: S704 - escaped above: the only markup is the two tags just added


def _name(ref: dict[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A short human reading of a schema: ``integer 0-100``, ``Customer``, ``list of LineItem``."""
    if "$ref" in schema:
        return _name(schema)
    kinds = schema.get("type", "any")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    nullable = "null" in kinds
    kind = next((k for k in kinds if k != "null"), "null")
    if "enum" in schema:
        shown = " | ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in schema["enum"] if v is not None)
        text = f"one of {shown}" if len(schema["enum"]) > 1 else f'"{shown}"'
    elif kind == "array":
        text = f"list of {type_of(schema.get('items', {}))}"
    elif kind == "string" and schema.get("format") == "date":
        text = "date (YYYY-MM-DD)"
    elif kind == "integer" and "minimum" in schema and "maximum" in schema:
        text = f"integer {schema['minimum']} to {schema['maximum']}"
    elif kind == "string" and "maxLength" in schema:
        text = f"string of at most {schema['maxLength']} characters"
    else:
        text = kind
    return f"{text} or null" if nullable else text


def _rows(schema: dict[str, Any]) -> list[Row]:
    required = set(schema.get("required", []))
    return [
        Row(name, type_of(prop), name in required, str(prop.get("description", "")))
        for name, prop in schema.get("properties", {}).items()
    ]


@cache
def reference() -> dict[str, Any]:
    """What the docs template shows, worked out once."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    sections: dict[str, list[OperationView]] = {name: [] for name in (t["name"] for t in document["tags"])}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            status, answer = next((s, a) for s, a in op["responses"].items() if s.startswith("2"))
            sections[op["tags"][0]].append(
                OperationView(
                    anchor=op["operationId"],
                    method=method.upper(),
                    path=API_PREFIX + path,
                    summary=op["summary"],
                    description=op["description"],
                    params=[
                        Row(f"{p['name']} ({p['in']})", type_of(p["schema"]), p["required"], p["description"])
                        for p in op.get("parameters", [])
                    ],
                    body=_name(body) if body else None,
                    body_rows=_rows(schemas[_name(body)]) if body else [],
                    answer=_name(answer["content"]["application/json"]["schema"]),
                    answer_status=status,
                    errors=[s for s in op["responses"] if not s.startswith("2")],
                )
            )
    objects = [
        (name, schema.get("description", ""), _rows(schema))
        for name, schema in sorted(schemas.items())
        if not name.endswith(("Create", "Update", "Request", "List")) and name not in ("Error", "ErrorBody")
    ]
    return {
        "title": document["info"]["title"],
        "version": document["info"]["version"],
        "introduction": [inline(part.replace("\n", " ")) for part in INTRODUCTION.split("\n\n")],
        "tags": document["tags"],
        "sections": sections,
        "objects": objects,
        "errors": sorted(ERROR_CODES.items(), key=lambda item: (item[1][0], item[0])),
    }
