"""RQ's own pages (django-rq) are for superusers and holders of bpm.manage_queues only."""

from __future__ import annotations

import django_rq
import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from factories import UserFactory
from rq import Queue
from rq.job import Job

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def rq_routes() -> list[str]:
    """Return one URL for every route that serves a django-rq view, however it is mounted."""
    urls: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                module = getattr(entry.callback, "__module__", "") or ""
                wrapped = getattr(entry.callback, "__wrapped__", None)
                origin = getattr(wrapped, "__module__", "") or ""
                if "django_rq" in (module + origin) or prefix.startswith(
                    ("django-rq/", "admin/django_rq/")
                ):
                    urls.append("/" + fill(prefix + str(entry.pattern)))

    walk(get_resolver().url_patterns, "")
    return sorted(set(urls))


def fill(route: str) -> str:
    """Return the route with every parameter replaced by an existing-looking value."""
    import re

    route = route.replace("^", "").replace("$", "").replace("/?", "/")
    route = re.sub(r"\(\?P<token>[^)]*\)\?", "sometoken", route)
    route = re.sub(r"<int:[a-z_]+>", "0", route)
    route = re.sub(r"<path:[a-z_]+>", "job", route)
    route = re.sub(r"<(str:)?[a-z_]+>", "job", route)
    route = re.sub(r"\\\.", ".", route)
    return route


ROUTES = rq_routes()


def test_every_django_rq_route_is_found():
    # The mount under /django-rq/ and the admin's own mount both count.
    assert any(url.startswith("/django-rq/queues/0/empty/") for url in ROUTES)
    assert any(url.startswith("/admin/django_rq/") for url in ROUTES)
    assert len(ROUTES) >= 40


def test_a_viewer_is_refused_every_rq_page_with_every_method(client):
    client.force_login(UserFactory(username="vera", groups=["viewers"]))
    answers = {
        (method, url): getattr(client, method)(url).status_code
        for url in ROUTES
        for method in METHODS
    }
    assert {key: code for key, code in answers.items() if code != 403} == {}


def test_an_operator_and_a_staff_user_in_no_group_are_refused(client):
    answers = {}
    for user in (UserFactory(groups=["operators"]), UserFactory()):
        client.force_login(user)
        for url in ROUTES:
            answers[(user.username, "get", url)] = client.get(url).status_code
            answers[(user.username, "post", url)] = client.post(url).status_code
    assert {key: code for key, code in answers.items() if code != 403} == {}


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    login = reverse("admin:login")
    answers = {url: client.get(url) for url in ROUTES}
    refused = {
        url: response.status_code
        for url, response in answers.items()
        if response.status_code != 302 or not response["Location"].startswith(login)
    }
    assert refused == {}


def test_a_viewer_cannot_empty_a_queue(client):
    # A plain rq Queue: django_rq's would wait for a commit this test never makes.
    queue = Queue("default", connection=django_rq.get_connection())
    queue.enqueue("builtins.print")
    client.force_login(UserFactory(groups=["viewers"]))
    client.post("/django-rq/queues/0/empty/", {"post": "yes"})
    assert queue.count == 1


def test_the_manage_queues_permission_opens_the_pages(client):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="manage_queues"))
    client.force_login(user)
    assert client.get("/django-rq/").status_code == 200
    assert client.get("/django-rq/queues/0/").status_code == 200


def test_no_group_holds_the_manage_queues_permission():
    permission = Permission.objects.get(content_type__app_label="bpm", codename="manage_queues")
    assert not permission.group_set.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/django-rq/queues/99/",
        "/django-rq/queues/99/details/",
        "/django-rq/queues/99/failed/",
        "/django-rq/queues/99/empty/",
        "/django-rq/queues/0/no-such-job/",
        "/django-rq/queues/0/no-such-job/delete/",
        "/django-rq/queues/0/no-such-job/requeue/",
        "/django-rq/queues/0/no-such-job/enqueue/",
        "/django-rq/queues/0/no-such-job/stop/",
        "/django-rq/queues/0/no-such-job/results/1-0/",
        "/django-rq/workers/99/",
        "/django-rq/workers/0/no-such-worker/",
        "/django-rq/schedulers/99/",
        "/django-rq/cron-schedulers/99/none/",
        "/admin/django_rq/dashboard/queues/99/",
        "/admin/django_rq/dashboard/queues/0/no-such-job/",
    ],
)
def test_a_bad_id_is_a_404_not_a_500(admin_client, url):
    admin_client.raise_request_exception = False
    assert admin_client.get(url).status_code == 404


def test_a_superuser_sees_a_job_that_exists(admin_client):
    job = Queue("default", connection=django_rq.get_connection()).enqueue("builtins.print")
    assert isinstance(job, Job)
    assert admin_client.get(f"/django-rq/queues/0/{job.id}/").status_code == 200


def test_the_dashboard_queue_overview_stays_open_to_viewers(client):
    client.force_login(UserFactory(groups=["viewers"]))
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 200
    assert b"Workers and queues" in response.content
