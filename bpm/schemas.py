"""Saga input schemas: which schemas are accepted, and validating an input against one.

Everything that checks a saga's input goes through `validate`, and every schema is checked by
`check` before a version holding it is written. Two rules keep a schema from attacking the server:

- It references only itself (`#/...`, `#/$defs/...`, `#anchor`): the registry retrieves nothing, so
  no `$ref` reaches the network or the file system, and a reference that does not resolve inside
  the schema is refused when the version is composed or synced.
- Its regular expressions (`pattern`, `patternProperties`, `format: regex`) run on RE2, whose
  matching time is linear in the input, so no pattern makes validation exponential. A pattern RE2
  cannot compile (backreferences, lookaround) is refused when the version is composed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from bpm.errors import Conflict, DefinitionInvalid, InvalidInput

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Keywords whose value is a subschema, a list of them, or a map of names to them (draft 2020-12).
SUBSCHEMA = (
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
SUBSCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
SUBSCHEMA_MAP = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")
# Keywords that apply their subschemas to the same instance: a cycle through them never ends.
SAME_INSTANCE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas")
REFERENCES = ("$ref", "$dynamicRef")


class SchemaRefused(DefinitionInvalid):
    """An input schema the engine will not run: invalid, referencing outside itself, or unsafe."""


# --- regular expressions on RE2 -------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, options=_RE2_OPTIONS)


def regex_problem(pattern: str) -> str:
    """Return why RE2 cannot compile the pattern, or "" when it can."""
    try:
        _compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return f"{reason} (RE2 has no backreferences nor lookaround)"
    return ""


def _search(pattern: str, text: str) -> bool:
    try:
        return _compiled(pattern).search(text) is not None
    except UnicodeEncodeError:
        return False  # a lone surrogate: no pattern matches what cannot be UTF-8


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = sorted(
        key
        for key in instance
        if key not in properties and not any(_search(pattern, key) for pattern in patterns)
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        names = ", ".join(repr(extra) for extra in extras)
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            regexes = ", ".join(repr(pattern) for pattern in sorted(patterns))
            yield ValidationError(f"{names} {verb} not match any of the regexes: {regexes}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            message = f"Additional properties are not allowed ({names} {verb} unexpected)"
            yield ValidationError(message)


# jsonschema's own keywords, except the three that run regular expressions with Python's `re`.
InputValidator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)

# Formats that are checked, not only annotations: the ones a saga's input has a use for.
FORMATS = FormatChecker(formats=("date", "ipv4", "ipv6", "uuid"))


@FORMATS.checks("email", raises=DjangoValidationError)
def _is_email(instance: object) -> bool:
    if isinstance(instance, str):
        validate_email(instance)
    return True


@FORMATS.checks("regex")
def _is_regex(instance: object) -> bool:
    return not isinstance(instance, str) or not regex_problem(instance)


def _retrieve_nothing(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


# Resolves nothing but the schema itself (and the metaschemas jsonschema bundles).
NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_retrieve_nothing)  # type: ignore[call-arg]


# --- checking a schema ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    schema: dict[str, Any]
    where: str


def check(schema: Any) -> None:
    """Raise SchemaRefused, naming what is wrong, unless the engine may validate input with it."""
    problems = schema_problems(schema)
    if problems:
        raise SchemaRefused("; ".join(problems))


def schema_problems(schema: Any) -> list[str]:
    """Return what makes the schema unusable as a saga's input schema (empty when usable)."""
    if not isinstance(schema, dict):
        return ["an input schema must be a JSON object"]
    dialect = schema.get("$schema", DIALECT)
    if dialect.rstrip("#") != DIALECT:
        return [f"$schema {dialect!r} is not supported: input schemas use {DIALECT}"]
    error = best_match(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        return [f"not a valid JSON Schema{f' at {where}' if where else ''}: {error.message}"]
    return _Walk(schema).problems()


class _Walk:
    """Visits every subschema the validator could reach, following `$ref`s inside the schema."""

    def __init__(self, root: dict[str, Any]) -> None:
        resource = DRAFT202012.create_resource(root)
        self.resolver = NO_RETRIEVAL.resolver_with_root(resource)
        self.root = root
        self.found: list[str] = []
        self.seen: set[int] = set()
        self.edges: dict[int, list[int]] = {}
        self.where: dict[int, str] = {}

    def problems(self) -> list[str]:
        pending = [_Node(self.root, "")]
        while pending:
            node = pending.pop()
            if id(node.schema) in self.seen:
                continue
            self.seen.add(id(node.schema))
            self.where[id(node.schema)] = node.where or "/"
            pending.extend(self._visit(node))
        loop = self._endless_loop()
        if loop:
            self.found.append(
                f"$ref at {loop} leads back to itself without reading any deeper into the input"
            )
        return self.found

    def _visit(self, node: _Node) -> Iterator[_Node]:
        schema, where = node.schema, node.where
        if where and "$id" in schema:
            self.found.append(f"$id at {where}/$id: only the root of an input schema may set $id")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            self._regex(pattern, f"{where}/pattern")
        for pattern in schema.get("patternProperties") or {}:
            self._regex(pattern, f"{where}/patternProperties/{pattern}")
        if "unevaluatedProperties" in schema and _uses_pattern_properties(self.root):
            self.found.append(
                f"unevaluatedProperties at {where}/unevaluatedProperties cannot be combined with"
                " patternProperties in an input schema"
            )
        same_instance = self.edges.setdefault(id(schema), [])
        for keyword in REFERENCES:
            target = self._reference(schema.get(keyword), f"{where}/{keyword}")
            if target is not None:
                same_instance.append(id(target.schema))
                yield target
        for keyword, child in _children(schema, where):
            if keyword in SAME_INSTANCE:
                same_instance.append(id(child.schema))
            yield child

    def _regex(self, pattern: str, where: str) -> None:
        problem = regex_problem(pattern)
        if problem:
            self.found.append(f"pattern {pattern!r} at {where} cannot be used: {problem}")

    def _reference(self, ref: Any, where: str) -> _Node | None:
        if not isinstance(ref, str):
            return None
        if not ref.startswith("#"):
            self.found.append(
                f"$ref {ref!r} at {where} is external: an input schema may reference only itself"
                " (#/... or #/$defs/...)"
            )
            return None
        try:
            resolved = self.resolver.lookup(ref)
        except Unresolvable:
            self.found.append(f"$ref {ref!r} at {where} does not resolve inside the schema")
            return None
        if isinstance(resolved.contents, dict):
            return _Node(resolved.contents, ref[1:])
        return None

    def _endless_loop(self) -> str:
        """Return where a cycle of same-instance references starts, or ""."""
        state: dict[int, int] = {}  # 1: on the current path, 2: finished

        def visit(start: int) -> str:
            stack = [(start, iter(self.edges.get(start, ())))]
            state[start] = 1
            while stack:
                node, targets = stack[-1]
                for target in targets:
                    if state.get(target) == 1:
                        return self.where.get(node, "/")
                    if target not in state:
                        state[target] = 1
                        stack.append((target, iter(self.edges.get(target, ()))))
                        break
                else:
                    state[node] = 2
                    stack.pop()
            return ""

        for node in list(self.edges):
            if node not in state:
                found = visit(node)
                if found:
                    return found
        return ""


def _children(schema: dict[str, Any], where: str) -> Iterable[tuple[str, _Node]]:
    for keyword in SUBSCHEMA:
        child = schema.get(keyword)
        if isinstance(child, dict):
            yield keyword, _Node(child, f"{where}/{keyword}")
    for keyword in SUBSCHEMA_LIST:
        items = schema.get(keyword)
        if isinstance(items, list):
            for index, child in enumerate(items):
                if isinstance(child, dict):
                    yield keyword, _Node(child, f"{where}/{keyword}/{index}")
    for keyword in SUBSCHEMA_MAP:
        named = schema.get(keyword)
        if isinstance(named, dict):
            for name, child in named.items():
                if isinstance(child, dict):
                    yield keyword, _Node(child, f"{where}/{keyword}/{name}")


def _uses_pattern_properties(root: dict[str, Any]) -> bool:
    return '"patternProperties"' in json.dumps(root)


# --- validating input -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    problems = schema_problems(schema)
    if problems:
        raise SchemaRefused("; ".join(problems))
    return InputValidator(schema, registry=NO_RETRIEVAL, format_checker=FORMATS)


def validate(schema: dict[str, Any] | None, value: Any, *, path: str = "input") -> None:
    """Raise InvalidInput, naming the failing path, unless the schema accepts `value`.

    A stored schema that breaks the rules above (saved before they existed) is a Conflict: its
    definition needs a new version, and nothing runs it meanwhile.
    """
    if not schema:
        return
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaRefused as exc:
        raise Conflict(f"the input schema cannot be used: {exc}; compose a new version") from None
    error = best_match(validator.iter_errors(value))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise InvalidInput(error.message, path=f"{path}{where}" if path else where.lstrip("."))


def errors_by_field(schema: dict[str, Any], value: Any) -> dict[str, str]:
    """Return every place `value` breaks the schema, as {"field.path": message} ("" for the root).

    For a form that shows each field's error next to it; a stored schema the rules refuse is a
    Conflict, as in `validate`.
    """
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaRefused as exc:
        raise Conflict(f"the form's schema cannot be used: {exc}") from None
    errors: dict[str, str] = {}
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required" and not where:
            missing = error.message.split("'")[1] if "'" in error.message else ""
            where = missing
            message = "This field is required."
        else:
            message = error.message
        errors.setdefault(where, message)
    return errors
