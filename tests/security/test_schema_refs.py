"""Input schemas reference only themselves: nothing is fetched, a bad $ref is refused by name."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import declare

from bpm import definitions
from bpm.declarations import SagaDeclaration, StepDeclaration
from bpm.errors import DefinitionInvalid
from bpm.models import SagaDefinition, SagaInstance

pytestmark = pytest.mark.django_db

ADD = reverse("admin:bpm_sagadefinition_add")
STEP = StepDeclaration("a", "test.remote")


class Fetches(BaseHTTPRequestHandler):
    """Answers every GET with a schema that accepts anything, and counts the requests."""

    seen: list[str] = []

    def do_GET(self) -> None:
        Fetches.seen.append(self.path)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def schema_server() -> Iterator[str]:
    """Return the URL of a server on the loopback that records what it is asked for."""
    Fetches.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Fetches)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api() -> APIClient:
    user = UserFactory(username="olga", groups=["operators", "clients"])
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def saved_before_the_rules(name: str, schema: dict[str, Any]) -> SagaDefinition:
    """Return a version whose schema was stored before schemas were checked (a legacy row)."""
    definition = declare(name, STEP)
    SagaDefinition.objects.filter(pk=definition.pk).update(input_schema=schema)
    return SagaDefinition.objects.get(pk=definition.pk)


def declaration(schema: dict[str, Any]) -> SagaDeclaration:
    return SagaDeclaration(name="probe", title="probe", steps=(STEP,), input_schema=schema)


def test_starting_a_saga_never_fetches_a_remote_ref(api, schema_server):
    saved_before_the_rules("remote_ref", {"$ref": f"{schema_server}/schema.json"})
    response = api.post("/api/v1/sagas/", {"definition": "remote_ref", "input": {}}, format="json")
    assert Fetches.seen == []
    assert response.status_code == 409, response.content
    assert f"{schema_server}/schema.json" in response.json()["message"]
    assert not SagaInstance.objects.exists()


def test_starting_a_saga_never_reads_a_file_ref(api, tmp_path: Path):
    refusing = tmp_path / "schema.json"
    refusing.write_text(json.dumps({"type": "string"}))
    saved_before_the_rules("file_ref", {"$ref": refusing.as_uri()})
    response = api.post("/api/v1/sagas/", {"definition": "file_ref", "input": {}}, format="json")
    assert response.status_code == 409, response.content
    assert refusing.as_uri() in response.json()["message"]


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"$ref": "http://127.0.0.1:9/schema.json"}, "'http://127.0.0.1:9/schema.json'"),
        ({"$ref": "file:///etc/passwd"}, "'file:///etc/passwd'"),
        ({"properties": {"a": {"$ref": "other.json#/x"}}}, "'other.json#/x' at /properties/a"),
        ({"$ref": "#/$defs/missing"}, "'#/$defs/missing' at /$ref does not resolve"),
        ({"$dynamicRef": "https://example.com/s"}, "'https://example.com/s'"),
    ],
    ids=["http", "file", "relative", "unresolvable", "dynamic"],
)
def test_syncing_a_schema_with_a_bad_ref_is_refused_naming_it(schema, named):
    with pytest.raises(DefinitionInvalid, match="ref") as refused:
        definitions.sync_declaration(declaration(schema))
    assert named in str(refused.value)
    assert not SagaDefinition.objects.filter(name="probe").exists()


def test_composing_a_schema_with_an_external_ref_is_refused_naming_it():
    with pytest.raises(DefinitionInvalid, match=re.escape("'https://example.com/order.json'")):
        definitions.compose_version(
            declaration({"$ref": "https://example.com/order.json"}), actor="test"
        )


def test_a_schema_that_references_itself_is_accepted_and_validates():
    from bpm import schemas

    schema = {
        "$defs": {"id": {"type": "integer", "minimum": 1}},
        "type": "object",
        "properties": {"customer": {"$ref": "#/$defs/id"}, "tree": {"$ref": "#"}},
    }
    definition, created = definitions.sync_declaration(declaration(schema))
    assert created
    schemas.validate(definition.input_schema, {"customer": 1, "tree": {"customer": 2}})
    with pytest.raises(Exception, match=r"input\.tree\.customer"):
        schemas.validate(definition.input_schema, {"tree": {"customer": 0}})


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
            "$ref": "#/$defs/a",
        },
    ],
    ids=["itself", "through-allOf"],
)
def test_a_ref_loop_that_reads_no_deeper_is_refused(schema):
    with pytest.raises(DefinitionInvalid, match="leads back to itself"):
        definitions.sync_declaration(declaration(schema))


def test_a_schema_for_another_dialect_or_an_invalid_one_is_refused():
    from bpm import schemas

    with pytest.raises(DefinitionInvalid, match="draft-07"):
        schemas.check({"$schema": "http://json-schema.org/draft-07/schema#"})
    with pytest.raises(DefinitionInvalid, match="not a valid JSON Schema at type"):
        schemas.check({"type": "no-such-type"})


def composed(schema: dict[str, Any]) -> dict[str, str]:
    """Return the admin's add form for a one-step version with this input schema."""
    row = {
        "position": "1",
        "name": "a",
        "action": "test.remote",
        "compensation": "",
        "kind": "COMPENSATABLE",
        "max_attempts": "3",
        "initial_backoff": "1.0",
        "backoff_multiplier": "2.0",
        "max_backoff": "60.0",
        "jitter": "0.1",
        "timeout": "30.0",
        "queue": "default",
    }
    return {
        "name": "probe",
        "title": "probe",
        "description": "",
        "input_schema": json.dumps(schema),
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        **{f"steps-0-{key}": value for key, value in row.items()},
    }


def test_the_admin_refuses_an_external_ref_with_a_form_error_naming_it(client):
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(ADD, composed({"$ref": "http://169.254.169.254/latest/meta-data"}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["input_schema"]
    assert any("'http://169.254.169.254/latest/meta-data'" in error for error in errors), errors
    assert not SagaDefinition.objects.filter(name="probe").exists()
