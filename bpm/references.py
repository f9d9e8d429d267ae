"""Templates an HTTP step fills from its saga: `{"$ref": "/input/x"}` values and `{input.x}` text.

A `{"$ref": pointer}` object (an RFC 6901 JSON pointer) is replaced by the value it points at,
keeping its JSON type. In a string, `{root.path.to.value}` is replaced by that value written as
text (a number as JSON writes it, a boolean as true/false); `{{` and `}}` stand for literal braces.
The roots are `input`, `context` (earlier steps' outputs, by step name) and `saga` (`id`,
`business_key`, `action_idempotency_key`). A reference to nothing is an error, never an empty
string: MissingReference at run time, a problem when a definition is saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

ROOTS = ("input", "context", "saga")
SAGA_FIELDS = ("id", "business_key", "action_idempotency_key")
REF = "$ref"
# `{{`, `}}`, or a placeholder: a root, then dot-separated names or list indexes.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}")
MAX_DEPTH = 32


class MissingReference(Exception):
    """A template refers to a value the saga does not have."""


def template_problems(value: Any, where: str, depth: int = 0) -> list[str]:
    """Return what is wrong with the references in a JSON template (its shape is not checked)."""
    if depth > MAX_DEPTH:
        return [f"{where}: nested more than {MAX_DEPTH} levels deep"]
    if isinstance(value, dict):
        if REF in value:
            return _pointer_problems(value, where)
        problems = []
        for key, item in value.items():
            problems.extend(text_problems(str(key), f"{where}.{key}"))
            problems.extend(template_problems(item, f"{where}.{key}", depth + 1))
        return problems
    if isinstance(value, list):
        return [
            problem
            for index, item in enumerate(value)
            for problem in template_problems(item, f"{where}[{index}]", depth + 1)
        ]
    if isinstance(value, str):
        return text_problems(value, where)
    return []


def text_problems(text: str, where: str) -> list[str]:
    """Return what is wrong with the placeholders of a text template."""
    return [
        f"{where}: {{{match.group(1)}}} {problem}"
        for match in PLACEHOLDER.finditer(text)
        if match.group(1) is not None
        for problem in [_path_problem(match.group(1).split("."))]
        if problem
    ]


def placeholders(text: str) -> list[re.Match[str]]:
    """Return the placeholders of a text template (not the escaped braces)."""
    return [match for match in PLACEHOLDER.finditer(text) if match.group(1) is not None]


def _pointer_problems(value: dict[str, Any], where: str) -> list[str]:
    pointer = value[REF]
    if set(value) != {REF}:
        return [f'{where}: a {{"$ref": …}} object holds nothing else']
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        return [f'{where}: $ref must be a JSON pointer such as "/input/customer_id"']
    if re.search(r"~[^01]|~$", pointer):
        return [f"{where}: $ref {pointer!r} has a ~ that is not ~0 or ~1"]
    problem = _path_problem(_pointer_parts(pointer))
    return [f"{where}: $ref {pointer!r} {problem}"] if problem else []


def _path_problem(parts: list[str]) -> str:
    if not parts or parts[0] not in ROOTS:
        return f"must start with one of {', '.join(ROOTS)}"
    if parts[0] == "saga" and (len(parts) != 2 or parts[1] not in SAGA_FIELDS):
        return f"names no saga field (saga.{', saga.'.join(SAGA_FIELDS)})"
    return ""


def _pointer_parts(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def fill(value: Any, scope: dict[str, Any], where: str = "body") -> Any:
    """Return the template with every reference replaced by the saga's value."""
    if isinstance(value, dict):
        if REF in value:
            return lookup(_pointer_parts(value[REF]), scope, value[REF])
        return {
            fill_text(str(key), scope, f"{where}.{key}"): fill(item, scope, f"{where}.{key}")
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [fill(item, scope, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, str):
        return fill_text(value, scope, where)
    return value


def fill_text(
    text: str, scope: dict[str, Any], where: str, encode: Callable[[str], str] = str
) -> str:
    """Return the text with its placeholders filled, each value passed through `encode`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
        path = match.group(1)
        value = lookup(path.split("."), scope, "{" + path + "}")
        return encode(_as_text(value, path, where))

    return PLACEHOLDER.sub(replace, text)


def lookup(parts: list[str], scope: dict[str, Any], shown: str) -> Any:
    """Return the value at `parts` in the scope, or raise MissingReference naming `shown`."""
    value: Any = scope
    for depth, part in enumerate(parts):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            where = "/".join(parts[: depth + 1])
            raise MissingReference(f"{shown} refers to nothing: the saga has no {where}")
    return value


def _as_text(value: Any, path: str, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    kind = "null" if value is None else type(value).__name__
    raise MissingReference(
        f"{where}: {{{path}}} is {kind}, which has no text to put in its place"
        ' (use {"$ref": …} to put an object in a body)'
    )
