"""Cursor pagination: stable pages while rows are being added, and a refusal for a bad page size."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

MAX_PAGE_SIZE = 200


class TimePagination(CursorPagination):
    """Pages through rows ordered by a time column (the cursor's position), then by id."""

    page_size = 50
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        is_number = raw.isascii() and raw.isdigit() and len(raw) <= 4
        if not (is_number and 1 <= int(raw) <= MAX_PAGE_SIZE):
            message = f"Must be an integer from 1 to {MAX_PAGE_SIZE}."
            raise exceptions.ValidationError({self.page_size_query_param: [message]})
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if (
            cursor is not None
            and cursor.position is not None
            and not _is_time(str(cursor.position))
        ):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        cursor, size = super().get_schema_operation_parameters(view)
        size["schema"].update(minimum=1, maximum=MAX_PAGE_SIZE, default=self.page_size)
        return [cursor, size]

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": ["string", "null"], "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }


class NewestFirst(TimePagination):
    ordering = ("-created_at", "-id")


class OldestEventFirst(TimePagination):
    ordering = ("at", "id")
    page_size = 100


def _is_time(text: str) -> bool:
    """Return whether a cursor's position is a time the database can compare, in UTC."""
    try:
        moment = parse_datetime(text)
        if moment is not None and moment.tzinfo is not None:
            moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return moment is not None
