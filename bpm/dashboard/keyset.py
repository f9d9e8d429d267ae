"""Keyset pagination: a page starts after (or before) a row's sort key, never at an OFFSET.

The cost of a page is the same on the first page and the ten-thousandth, and nothing counts the
whole table. A link to the next or previous page carries an opaque, signed cursor: the sort key of
the row at the page's edge, which way to go, and the ordering it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Field, Model, Q, QuerySet

SALT = "bpm.dashboard.keyset"

M = TypeVar("M", bound=Model)


class CursorInvalid(ValueError):
    """A cursor that was altered, or made for another ordering."""


@dataclass(frozen=True)
class Ordering:
    """A sort order named `name`: by `fields`, the last of which is unique (the tie-breaker)."""

    name: str
    fields: tuple[str, ...]
    descending: bool


@dataclass(frozen=True)
class Cursor:
    """A position in an ordering: the sort key of an edge row and which way the page goes."""

    values: tuple[Any, ...]
    backwards: bool


@dataclass(frozen=True)
class Page(Generic[M]):
    rows: list[M]
    next_cursor: str | None
    previous_cursor: str | None


def encode(ordering: Ordering, row: Model, *, backwards: bool) -> str:
    """Return the signed cursor for the page after `row` (or before it, `backwards`)."""
    values = [_plain(getattr(row, field)) for field in ordering.fields]
    return signing.dumps({"o": ordering.name, "v": values, "b": backwards}, salt=SALT)


def decode(token: str, ordering: Ordering, model: type[Model]) -> Cursor:
    """Return the cursor `token` stands for, or raise CursorInvalid saying what is wrong."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise CursorInvalid("the page link was altered or is not one of ours") from None
    if not isinstance(payload, dict) or payload.get("o") != ordering.name:
        raise CursorInvalid("the page link belongs to another sort order")
    values = payload.get("v")
    if not isinstance(values, list) or len(values) != len(ordering.fields):
        raise CursorInvalid("the page link does not fit this sort order")
    try:
        parsed = tuple(
            _field(model, field).to_python(value)
            for field, value in zip(ordering.fields, values, strict=True)
        )
    except ValidationError:
        raise CursorInvalid("the page link holds values of the wrong kind") from None
    return Cursor(values=parsed, backwards=bool(payload.get("b")))


def paginate(rows: QuerySet[M], ordering: Ordering, cursor: Cursor | None, size: int) -> Page[M]:
    """Return the page of `rows` at `cursor` (the first page without one); one query."""
    backwards = cursor is not None and cursor.backwards
    descending = ordering.descending != backwards
    sign = "-" if descending else ""
    query = rows.order_by(*(sign + field for field in ordering.fields))
    if cursor is not None:
        query = query.filter(_beyond(ordering.fields, cursor.values, descending=descending))
    found = list(query[: size + 1])
    more = len(found) > size
    found = found[:size]
    if backwards:
        found.reverse()
    # Coming from a neighbouring page means there is one on that side.
    has_next = more if not backwards else True
    has_previous = more if backwards else cursor is not None
    return Page(
        rows=found,
        next_cursor=encode(ordering, found[-1], backwards=False) if found and has_next else None,
        previous_cursor=(
            encode(ordering, found[0], backwards=True) if found and has_previous else None
        ),
    )


def _beyond(fields: Sequence[str], values: Sequence[Any], *, descending: bool) -> Q:
    """Return the rows strictly after `values` in the (field, …) order, going `descending`."""
    op = "lt" if descending else "gt"
    alternatives = Q()
    equal: dict[str, Any] = {}
    for field, value in zip(fields, values, strict=True):
        alternatives |= Q(**equal, **{f"{field}__{op}": value})
        equal[field] = value
    # Repeating the bound on the first field alone lets the database range-scan its index.
    return Q(**{f"{fields[0]}__{op}e": values[0]}) & alternatives


def _field(model: type[Model], name: str) -> Field:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{name} is not a column of {model.__name__}"
    return field


def _plain(value: Any) -> Any:
    """Return `value` as JSON can carry it (datetimes and UUIDs as strings)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
