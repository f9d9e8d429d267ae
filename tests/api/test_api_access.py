"""Authentication, throttling, the documentation pages, and errors before any view runs."""

from __future__ import annotations

import json
import re

import pytest
from django.test import override_settings
from django.utils.crypto import get_random_string
from factories import UserFactory
from rest_framework.test import APIClient
from testkit import with_pivot

from payments.models import Customer

pytestmark = pytest.mark.django_db

SAGA = "00000000-0000-0000-0000-000000000000"
ENDPOINTS = [
    ("post", "/api/v1/customers/"),
    ("get", "/api/v1/customers/1/"),
    ("get", "/api/v1/customers/1/orders/"),
    ("post", "/api/v1/orders/"),
    ("get", "/api/v1/orders/1/"),
    ("get", "/api/v1/sagas/"),
    ("post", "/api/v1/sagas/"),
    ("get", f"/api/v1/sagas/{SAGA}/"),
    ("get", f"/api/v1/sagas/{SAGA}/events/"),
    ("post", f"/api/v1/sagas/{SAGA}/retry/"),
    ("post", f"/api/v1/sagas/{SAGA}/skip/"),
    ("post", f"/api/v1/sagas/{SAGA}/compensate/"),
    ("post", f"/api/v1/sagas/{SAGA}/abort/"),
    ("get", "/api/v1/definitions/"),
    ("get", "/api/v1/definitions/place_order/"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_an_anonymous_request_is_a_401_asking_for_a_token(anonymous, method, url):
    response = getattr(anonymous, method)(url, {})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "details": {},
    }


def test_a_wrong_token_is_a_401(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = anonymous.get("/api/v1/sagas/")
    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")


def test_a_deactivated_users_token_is_a_401(viewer):
    viewer.user.is_active = False
    viewer.user.save()
    assert viewer.get("/api/v1/sagas/").status_code == 401


def test_drf_create_token_makes_a_working_key(capsys):
    from django.core.management import call_command

    UserFactory(username="shopfront", groups=["clients"])
    call_command("drf_create_token", "shopfront")
    key = re.search(r"[0-9a-f]{40}", capsys.readouterr().out).group()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/definitions/").status_code == 200


def test_a_session_works_and_a_post_needs_the_csrf_token():
    user = UserFactory(username="olga", groups=["operators", "clients"])
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get("/api/v1/sagas/").status_code == 200
    body = {"name": "Ada", "credit_limit": "1.00"}
    refused = browser.post("/api/v1/customers/", body)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
    token = get_random_string(32)  # what a page's {% csrf_token %} would have set
    browser.cookies["csrftoken"] = token
    accepted = browser.post("/api/v1/customers/", body, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert Customer.objects.count() == 1


@override_settings(BPM_API_USER_PER_MINUTE=3)
def test_a_user_over_the_rate_gets_429_with_retry_after(viewer, shop):
    statuses = [viewer.get("/api/v1/definitions/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = viewer.get("/api/v1/definitions/")
    assert throttled.json()["code"] == "throttled"
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert shop.get("/api/v1/definitions/").status_code == 200  # counted per user


@override_settings(BPM_API_ANON_PER_MINUTE=2)
def test_anonymous_requests_over_the_rate_get_429_before_401(anonymous):
    statuses = [anonymous.get("/api/v1/sagas/").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


@override_settings(BPM_API_USER_PER_MINUTE=0, BPM_API_ANON_PER_MINUTE=0)
def test_a_rate_of_zero_turns_throttling_off(viewer):
    assert {viewer.get("/api/v1/definitions/").status_code for _ in range(70)} == {200}


def test_the_schema_is_openapi_3_and_public(anonymous):
    response = anonymous.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/sagas/{saga_id}/retry/" in schema["paths"]


def test_the_schema_documents_a_saga_input_as_an_object_checked_by_its_definition(
    anonymous, the_world
):
    with_pivot()
    schema = anonymous.get("/api/v1/schema/", {"format": "json"}).json()
    start = schema["components"]["schemas"]["SagaStartRequest"]
    assert start["properties"]["definition"]["type"] == "string"
    input_field = start["properties"]["input"]
    assert input_field["allOf"] == [{"$ref": "#/components/schemas/StorableObject"}]
    assert "/api/v1/definitions/{name}/" in input_field["description"]
    assert "with_pivot" not in json.dumps(schema)


@pytest.mark.parametrize(
    ("url", "bundle"),
    [
        ("/api/docs/", "/static/drf_spectacular_sidecar/"),
        # ReDoc's bundle comes from the site, without its CDN logo (bpm/api/redoc_bundle.py).
        ("/api/redoc/", "/api/redoc/redoc.standalone.js"),
    ],
)
def test_the_documentation_pages_load_nothing_from_the_internet(anonymous, url, bundle):
    response = anonymous.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert bundle in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    if url == "/api/docs/":
        # Swagger UI's settings are in its script, served from its own URL (no inline script).
        script = anonymous.get("/api/docs/?script=").content.decode()
        assert '"validatorUrl": null' in script


def test_an_unknown_api_url_is_a_json_404(viewer):
    response = viewer.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unsupported_method_is_a_405(viewer):
    response = viewer.delete("/api/v1/sagas/")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


def test_asking_for_html_is_a_406(viewer):
    response = viewer.get("/api/v1/sagas/", HTTP_ACCEPT="text/html")
    assert (response.status_code, response.json()["code"]) == (406, "not_acceptable")


def test_a_form_body_is_a_415(shop):
    response = shop.post("/api/v1/customers/", "name=Ada", content_type="text/plain")
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_signed_in_user_in_no_group_may_do_nothing(client_of, method, url):
    nobody = client_of(UserFactory(username="nobody", is_staff=False))
    response = getattr(nobody, method)(url, {})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_operator_starts_sagas_but_neither_opens_accounts_nor_places_orders(operator):
    order = {"customer_id": 1, "products": [1], "total": "1.00", "payment_method": "card"}
    start = {"definition": "place_order", "input": order}
    assert operator.post("/api/v1/sagas/", start).status_code == 201
    assert operator.post("/api/v1/orders/", order).status_code == 403
    assert (
        operator.post("/api/v1/customers/", {"name": "A", "credit_limit": "1"}).status_code == 403
    )
