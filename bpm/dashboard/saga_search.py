"""The saga search: what an operator knows (an order id, an email, key=value, words of an error)
turned into one condition, the same for the dashboard's list and the admin's changelist.

Every branch is served by an index on PostgreSQL: the primary key (an id prefix is a range), the
business and idempotency key indexes, GIN on the input and context (jsonpath `@?`) and a trigram
GIN on the stuck error (migration 0014). SQLite has no GIN: it reads the JSON with json_each and
json_tree. docs/dashboard.md ("Search") says the same for operators.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, F, Func, Q
from django.db.models.sql.compiler import SQLCompiler

MAX_LENGTH = 200
# Fewer characters of an id match too many sagas by chance (a "6" is more likely an order id);
# eight is the short id every page shows.
ID_PREFIX_MIN = 8
# A trigram index finds substrings of three characters or more.
ERROR_TEXT_MIN = 3
MAX_KEY_DEPTH = 8
HELP = (
    "An order id or business key, an idempotency key, a saga id (8 or more of its first"
    " characters), any value in the input or context such as an email (exactly), key=value for"
    ' one field (a.b=value for a nested key; value may be "quoted" to mean text only), or at'
    " least 3 characters of the error a stuck saga stopped on."
)
PLACEHOLDER = "order id, email, key=value, error text…"
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_BAD_KEY_CHARACTERS = set('."\\') | {chr(code) for code in range(32)}


class SearchInvalid(ValueError):
    """The search text cannot be understood; the message says how to write it."""


@dataclass(frozen=True)
class JsonValue:
    """One JSON scalar to look for: `kind` is number, string, true, false or null."""

    kind: str
    value: Any = None
    literal: str = ""

    @property
    def jsonpath(self) -> str:
        if self.kind == "number":
            return self.literal
        if self.kind == "string":
            return json.dumps(self.value, ensure_ascii=False)
        return self.kind


def search(text: str) -> Q:
    """Return the condition selecting the sagas `text` finds; raise SearchInvalid when malformed.

    A short id quoted with its ellipsis ("1a2b3c4d…", as messages show it) is the prefix it
    stands for. With "=", the text is key=value; otherwise it is looked for everywhere.
    """
    term = text.strip().rstrip("…").strip()
    if not term:
        # Nothing left to look for; an empty key would match every saga without one.
        return Q(pk__in=[])
    if len(term) > MAX_LENGTH:
        raise SearchInvalid(f"Search for at most {MAX_LENGTH} characters.")
    if "\x00" in term:
        raise SearchInvalid("The search cannot contain a NUL character.")
    match = Q(business_key=term) | Q(idempotency_key=term)
    if "=" in term:
        keys, values = parse_pair(term)
        return (
            match
            | Q(JsonValueMatch("input", keys, values))
            | Q(JsonValueMatch("context", keys, values))
        )
    match |= _id_prefix(term)
    values = values_of(term)
    match |= Q(JsonValueMatch("input", (), values)) | Q(JsonValueMatch("context", (), values))
    if len(term) >= ERROR_TEXT_MIN:
        match |= Q(stuck_error__icontains=term)
    return match


def _id_prefix(term: str) -> Q:
    digits = term.replace("-", "").lower()
    if not ID_PREFIX_MIN <= len(digits) <= 32 or not all(c in string.hexdigits for c in digits):
        return Q(pk__in=[])
    # A prefix of the id is the range from prefix-000… to prefix-fff…: a scan of the primary
    # key, which both PostgreSQL (uuid) and SQLite (hex text) order the same way.
    low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
    return Q(id__gte=low, id__lte=high)


def parse_pair(term: str) -> tuple[tuple[str, ...], tuple[JsonValue, ...]]:
    """Return the key path and the values of "key=value"; raise SearchInvalid when malformed."""
    key, _, value = term.partition("=")
    key, value = key.strip(), value.strip()
    example = "Write key=value, e.g. customer_email=ada@example.com or shipping.city=Oslo."
    if not key:
        raise SearchInvalid(f"The key before “=” is missing. {example}")
    if not value:
        raise SearchInvalid(f'The value after “=” is missing (write {key}="" for empty text).')
    keys = tuple(part.strip() for part in key.split("."))
    if any(not part for part in keys):
        raise SearchInvalid(f"“{key}” has an empty part between dots. {example}")
    if len(keys) > MAX_KEY_DEPTH:
        raise SearchInvalid(f"A key path has at most {MAX_KEY_DEPTH} parts.")
    if any(_BAD_KEY_CHARACTERS & set(part) for part in keys):
        raise SearchInvalid("A key cannot contain quotes, backslashes or control characters.")
    return keys, values_of(value)


def values_of(text: str) -> tuple[JsonValue, ...]:
    """Return the JSON values text stands for: a number or literal also as the text typed.

    `5` finds 5, 5.0 and "5"; `"5"` (quoted) finds the text "5" only; anything else is text.
    """
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            quoted = json.loads(text)
        except ValueError:
            quoted = text[1:-1]
        return (JsonValue("string", str(quoted)),)
    as_text = JsonValue("string", text)
    if _NUMBER.fullmatch(text):
        number: int | float = int(text) if text.lstrip("-").isdigit() else float(text)
        if isinstance(number, float) and number in (float("inf"), float("-inf")):
            return (as_text,)
        return (JsonValue("number", number, text), as_text)
    if text in ("true", "false", "null"):
        return (JsonValue(text), as_text)
    return (as_text,)


class JsonValueMatch(Func):
    """True when the JSON column holds one of `values`: at the key path, or anywhere without one.

    Arrays are looked into, as PostgreSQL's lax jsonpath does: products=5 finds [4, 5].
    """

    output_field = BooleanField()

    def __init__(self, column: str, keys: tuple[str, ...], values: tuple[JsonValue, ...]):
        super().__init__(F(column))
        self.keys, self.values = keys, values

    def as_postgresql(
        self, compiler: SQLCompiler, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.get_source_expressions()[0])
        where = "$" + "".join(f".{json.dumps(key, ensure_ascii=False)}" for key in self.keys)
        if not self.keys:
            where = "$.**"
        tests = " || ".join(f"@ == {value.jsonpath}" for value in self.values)
        # Inlined by the client as a constant, so the planner can match it to the GIN index.
        return f"({column} @? %s::jsonpath)", [*params, f"{where} ? ({tests})"]

    def as_sqlite(
        self, compiler: SQLCompiler, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.get_source_expressions()[0])
        tests, test_params = [], []
        for value in self.values:
            if value.kind == "number":
                tests.append("(j.type IN ('integer', 'real') AND j.value = %s)")
                test_params.append(value.value)
            elif value.kind == "string":
                tests.append("(j.type = 'text' AND j.value = %s)")
                test_params.append(value.value)
            else:
                tests.append(f"j.type = '{value.kind}'")
        condition = " OR ".join(tests)
        if not self.keys:
            return (
                f"EXISTS (SELECT 1 FROM json_tree({column}) AS j WHERE {condition})",
                [*params, *test_params],
            )
        path = "$" + "".join(f'."{key}"' for key in self.keys)
        # json_each at the path: one row for a scalar there, a row per element of an array, and
        # none for an object (as jsonpath compares no object with a scalar).
        return (
            f"(json_type({column}, %s) <> 'object' AND EXISTS"
            f" (SELECT 1 FROM json_each({column}, %s) AS j WHERE {condition}))",
            [*params, path, *params, path, *test_params],
        )

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, list[Any]]:
        raise NotImplementedError(f"searching JSON is not written for {connection.vendor}")
