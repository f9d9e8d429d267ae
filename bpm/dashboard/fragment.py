"""Answering htmx: the region a page refreshes is rendered alone, everything else whole."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails


def wants_fragment(request: HttpRequest) -> bool:
    """Return whether htmx asked for a region (not for a whole page to restore history)."""
    htmx = getattr(request, "htmx", None)
    return isinstance(htmx, HtmxDetails) and bool(htmx) and not htmx.history_restore_request


def render_page(
    request: HttpRequest, page: str, fragment: str, context: dict[str, Any]
) -> HttpResponse:
    """Render the whole `page`, or only `fragment` when htmx asked for it."""
    response = render(request, fragment if wants_fragment(request) else page, context)
    # The same URL answers two ways: caches must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response
