"""RQ's own pages (django-rq), open only to superusers and holders of ``bpm.manage_queues``.

django-rq lets any staff user empty queues, delete, requeue and stop jobs and read their arguments
and tracebacks. Every one of its views, under /django-rq/ and under the admin, goes through
`queue_manager_view` instead: anonymous visitors go to the login page, everybody else without the
permission gets 403, and an id that names nothing is a 404 rather than django-rq's 500.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, reverse
from django_rq.queues import get_queue_by_index
from django_rq.settings import get_queues_list
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.worker import Worker

MANAGE_QUEUES = "bpm.manage_queues"
# The URL parameters of django-rq's views that index its list of queues.
QUEUE_INDEXES = ("queue_index", "scheduler_index")

View = Callable[..., HttpResponse]


def may_manage_queues(request: HttpRequest) -> bool:
    """Return whether the request's user may reach RQ's own pages."""
    user = request.user
    return bool(user.is_active and user.has_perm(MANAGE_QUEUES))


def queue_manager_view(view: View) -> View:
    """Wrap a django-rq view: login, then the permission, then ids that exist."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not may_manage_queues(request):
            raise PermissionDenied("only superusers and queue managers may operate RQ's queues")
        _check_ids(kwargs)
        try:
            return view(request, *args, **kwargs)
        except NoSuchJobError:
            raise Http404("no such job") from None

    return guarded


def guard(patterns: list[Any]) -> list[Any]:
    """Return the URL patterns with every view wrapped by `queue_manager_view`."""
    return [
        URLPattern(p.pattern, queue_manager_view(p.callback), p.default_args, p.name)
        if isinstance(p, URLPattern)
        else p
        for p in patterns
    ]


def _check_ids(kwargs: dict[str, Any]) -> None:
    for name in QUEUE_INDEXES:
        if name in kwargs and not 0 <= kwargs[name] < len(get_queues_list()):
            raise Http404(f"no queue number {kwargs[name]}")
    if "queue_index" not in kwargs:
        return
    connection = get_queue_by_index(kwargs["queue_index"]).connection
    if "job_id" in kwargs and not Job.exists(kwargs["job_id"], connection=connection):
        raise Http404(f"no job {kwargs['job_id']!r}")
    if "key" in kwargs and not _worker_exists(kwargs["key"], connection):
        raise Http404(f"no worker {kwargs['key']!r}")


def _worker_exists(key: str, connection: Any) -> bool:
    try:
        return Worker.find_by_key(key, connection=connection) is not None
    except ValueError:  # not shaped like a worker key at all
        return False


def register_in_admin() -> None:
    """Replace django-rq's admin entry with one that only queue managers see and reach."""
    from django_rq.admin import QueueAdmin
    from django_rq.models import Dashboard

    class GuardedQueueAdmin(QueueAdmin):
        def has_module_permission(self, request: HttpRequest) -> bool:
            return may_manage_queues(request)

        def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
            return may_manage_queues(request)

        def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
            return may_manage_queues(request)

        def get_urls(self) -> list[Any]:
            return guard(super().get_urls())

    if admin.site.is_registered(Dashboard):
        admin.site.unregister(Dashboard)
    admin.site.register(Dashboard, GuardedQueueAdmin)
