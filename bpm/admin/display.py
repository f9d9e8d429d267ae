"""How the admins show sagas and long values: links to the dashboard, short ids, folded text."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

# Longer text is folded behind its first line.
SUMMARY_LENGTH = 100


def short_id(saga_id: uuid.UUID | str) -> str:
    """Return the first eight characters of a saga id, as operators quote it."""
    return f"{str(saga_id)[:8]}…"


def saga_link(saga_id: uuid.UUID | str | None) -> SafeString | str:
    """Return a link to the saga's page in the dashboard, labelled with its short id."""
    if saga_id is None:
        return "-"
    url = reverse("dashboard:saga", args=[saga_id])
    return format_html('<a href="{}" title="{}">{}</a>', url, saga_id, short_id(saga_id))


def pretty_json(value: Any) -> SafeString | str:
    """Return a JSON value indented in a <pre>, or '-' when there is none."""
    if value in (None, {}, []):
        return "-"
    text = json.dumps(value, indent=2, sort_keys=True)
    return format_html('<pre class="bpm-json">{}</pre>', text)


def folded(summary: str, detail: str = "") -> SafeString | str:
    """Return `summary` on one line, with `detail` (a traceback, a long message) folded under it."""
    first_line = summary.strip().splitlines()[0] if summary.strip() else ""
    if len(first_line) > SUMMARY_LENGTH:
        first_line = first_line[: SUMMARY_LENGTH - 1] + "…"
    rest = detail.strip() or (summary.strip() if first_line != summary.strip() else "")
    if not rest:
        return first_line or "-"
    return format_html(
        "<details><summary>{}</summary><pre>{}</pre></details>", first_line or "details", rest
    )


def moment(value: datetime | None) -> str:
    """Return a time to the millisecond in the current time zone: a timeline needs seconds."""
    if value is None:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def shown(
    attname: str, render: Callable[[Any], Any], description: str, ordering: str | None = None
) -> Callable[..., Any]:
    """Return an admin display function showing an object's `attname` through `render`."""

    @admin.display(description=description, ordering=ordering)
    def show(model_admin: Any, obj: Any) -> Any:
        return render(getattr(obj, attname))

    return show
