"""Fields and shapes: one description of each object the API (and the dashboard's forms) take, read three ways.

A :class:`Shape` lists its :class:`Field` s, each with the JSON Schema of its
value. From that one description come the request validation (:func:`parse`),
the OpenAPI component schemas (:class:`Components`), and the answers
(:meth:`Shape.dump`), so the document can never say one thing while the server
does another. The validator implements exactly the JSON Schema keywords the
shapes use, with ECMA-262 regular expression semantics as JSON Schema has them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any, Final

_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Invalid(Exception):
    """A request that does not fit its schema: ``code`` and the path of the ``field`` at fault."""

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Field:
    """One member of an object.

    ``schema`` is the JSON Schema of the value as requests send it (it may hold
    a :class:`Shape` as ``items``, or be ``{"shape": Shape}``); ``output`` the schema of the value in
    answers when it differs. ``required`` is for creation; ``create`` False
    makes the field read-only; ``update`` False keeps it out of PATCH.
    """

    name: str
    schema: Mapping[str, Any]
    doc: str
    required: bool = False
    create: bool = True
    update: bool = True
    output: Mapping[str, Any] | None = None
    hint: str = ""

    @property
    def answer_schema(self) -> Mapping[str, Any]:
        return self.output if self.output is not None else self.schema


def read_only(name: str, schema: Mapping[str, Any], doc: str) -> Field:
    return Field(name, schema, doc, create=False, update=False)


@dataclass(frozen=True, slots=True)
class Shape:
    """A JSON object: named in the OpenAPI document's components."""

    name: str
    doc: str
    fields: tuple[Field, ...]
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def __hash__(self) -> int:
        return hash(self.name)

    @cache  # noqa: B019 - shapes are module-level constants, so the cache lives as long as they do
    def for_create(self) -> Shape:
        """The request body that creates one."""
        fields = tuple(f for f in self.fields if f.create)
        return Shape(f"{self.name}Create", f"The body that creates {_article(self.name)}.", fields)

    @cache  # noqa: B019 - shapes are module-level constants, so the cache lives as long as they do
    def for_update(self) -> Shape:
        """The request body of PATCH: every field optional, only those sent change."""
        fields = tuple(
            Field(f.name, f.schema, f.doc, required=False, hint=f.hint) for f in self.fields if f.create and f.update
        )
        return Shape(f"{self.name}Update", f"The changes to {_article(self.name)}: send only what changes.", fields)

    def dump(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """An answer: exactly this shape's fields, from a stored object."""
        return {f.name: _dump(f.answer_schema, value[f.name]) for f in self.fields}


def _article(name: str) -> str:
    words = re.sub(r"(?<!^)([A-Z])", r" \1", name).lower()
    return ("an " if words[0] in "aeiou" else "a ") + words


def _dump(schema: Mapping[str, Any], value: Any) -> Any:
    nested = schema.get("shape")
    if isinstance(nested, Shape):
        return nested.dump(value)
    items = schema.get("items")
    if isinstance(items, Shape) and isinstance(value, list):
        return [items.dump(v) for v in value]
    return value


# -- validation -------------------------------------------------------------------------------


def _python_pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262: "$" is the very end, where Python's "$"
    # also matches before a final newline. The shapes use no literal "$".
    return re.compile(pattern.replace("$", r"\Z"))


_compiled = cache(_python_pattern)

_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def _describe(schema: Mapping[str, Any], hint: str) -> str:
    """What a value of ``schema`` must be, in words (``hint`` when the field has one)."""
    kinds = schema.get("type") or []
    kind = kinds if isinstance(kinds, str) else next((k for k in kinds if k != "null"), "value")
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum")
    if hint:
        text = hint
    elif "enum" in schema:
        text = "must be one of: " + ", ".join(str(v) for v in schema["enum"] if v is not None)
    elif kind == "integer" and low is not None and high is not None:
        text = f"must be a whole number from {low} to {high}"
    elif kind == "string" and schema.get("format") == "date":
        text = "must be a date written YYYY-MM-DD"
    elif kind == "string":
        text = f"must be text of at most {schema.get('maxLength', 'any')} characters"
    elif kind == "array":
        text = f"must be a list of {schema.get('minItems', 0)} to {schema.get('maxItems', 'any')} items"
    else:
        text = {"integer": "must be a whole number", "boolean": "must be true or false"}.get(kind, f"must be a {kind}")
    return text


def check(value: Any, schema: Mapping[str, Any], path: str, hint: str = "") -> Any:
    """``value`` if it fits ``schema``, else :class:`Invalid` naming ``path``."""
    nested = schema.get("shape")
    if isinstance(nested, Shape):
        return check_object(value, nested, path)
    kinds = schema.get("type")
    if isinstance(schema.get("items"), Shape) or kinds == "array":
        return _check_array(value, schema, path, hint)
    names = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if "integer" in names and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 2.0 is the integer 2
    if names and not any(_type_ok(value, k) for k in names):
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    if value is None:
        return None
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    if isinstance(value, str):
        _check_string(value, schema, path, hint)
    elif isinstance(value, int) and not _in_range(value, schema):
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    return value


def _in_range(value: int, schema: Mapping[str, Any]) -> bool:
    low: int = schema.get("minimum", value)
    high: int = schema.get("maximum", value)
    above: int = schema.get("exclusiveMinimum", value - 1)
    return low <= value <= high and value > above


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_string(value: str, schema: Mapping[str, Any], path: str, hint: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("invalid_field", path, f"{path} must be valid Unicode text") from None
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    pattern = schema.get("pattern")
    if pattern is not None and not _compiled(pattern).search(value):
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    if schema.get("format") == "date" and not _is_date(value):
        raise Invalid("invalid_field", path, f"{path} must be a date written YYYY-MM-DD")


def _check_array(value: Any, schema: Mapping[str, Any], path: str, hint: str) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
        raise Invalid("invalid_field", path, f"{path} {_describe(schema, hint)}")
    items = schema.get("items")
    if isinstance(items, Shape):
        return [check_object(v, items, f"{path}[{i}]") for i, v in enumerate(value)]
    if items is not None:
        return [check(v, items, f"{path}[{i}]") for i, v in enumerate(value)]
    return list(value)


def check_object(value: Any, shape: Shape, path: str = "") -> dict[str, Any]:
    """The members of ``value`` that ``shape`` knows, each checked; unknown members are refused."""
    where = f"{path} " if path else "the body "
    if not isinstance(value, dict):
        raise Invalid("invalid_field" if path else "invalid_body", path or None, f"{where}must be a JSON object")
    for name in value:
        if name not in shape.by_name:
            member = f"{path}.{name}" if path else name
            raise Invalid("unknown_field", member[:200], f"{member[:200]} is not a field of {shape.name}")
    result: dict[str, Any] = {}
    for f in shape.fields:
        member = f"{path}.{f.name}" if path else f.name
        if f.name in value:
            result[f.name] = check(value[f.name], f.schema, member, f.hint)
        elif f.required:
            raise Invalid("missing_field", member, f"{member} is required")
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse(body: bytes, shape: Shape) -> dict[str, Any]:
    """A request body: JSON text whose object fits ``shape``."""
    if not body.strip():
        raise Invalid("invalid_body", None, "the body must be a JSON object (it is empty)")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Invalid("invalid_json", None, "the body is not valid JSON in UTF-8") from None
    return check_object(value, shape)


# -- OpenAPI schemas ---------------------------------------------------------------------------


class Components:
    """The ``components/schemas`` of the OpenAPI document: each shape once, referred to by name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, shape: Shape, *, answer: bool = False) -> dict[str, str]:
        if shape.name not in self.schemas:
            self.schemas[shape.name] = {}  # placeholder: shapes may refer to themselves
            self.schemas[shape.name] = self._object(shape, answer=answer)
        return {"$ref": f"#/components/schemas/{shape.name}"}

    def schema(self, schema: Mapping[str, Any], *, answer: bool = False) -> dict[str, Any]:
        nested = schema.get("shape")
        if isinstance(nested, Shape):
            return self.ref(nested, answer=answer)
        result: dict[str, Any] = {}
        for key, value in schema.items():
            if isinstance(value, Shape):
                result[key] = self.ref(value, answer=answer)
            else:
                result[key] = value
        return result

    def _object(self, shape: Shape, *, answer: bool) -> dict[str, Any]:
        properties = {}
        for f in shape.fields:
            prop = self.schema(f.answer_schema if answer else f.schema, answer=answer)
            prop["description"] = f.doc
            properties[f.name] = prop
        required = [f.name for f in shape.fields] if answer else [f.name for f in shape.fields if f.required]
        result: dict[str, Any] = {
            "type": "object",
            "description": shape.doc,
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            result["required"] = required
        return result
