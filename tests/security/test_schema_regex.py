"""Regular expressions in input schemas: linear-time matching, and patterns RE2 cannot run refused.

Validation runs in a subprocess with a generous timeout: the timeout is a guard against a hang
(the old engine would run for longer than the universe), not a measure of speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.urls import reverse
from factories import UserFactory
from testkit import declare

from bpm import definitions, services
from bpm.api.fields import MAX_JSON_BYTES
from bpm.declarations import SagaDeclaration, StepDeclaration
from bpm.errors import DefinitionInvalid, InvalidInput
from bpm.models import SagaDefinition

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "^(a+)+$"
GUARD_SECONDS = 120

VALIDATE = """
import json, sys
import django
django.setup()
from bpm import services
from bpm.errors import InvalidInput
from bpm.models import SagaDefinition
schema, value = json.load(sys.stdin)
try:
    services.validate_input(SagaDefinition(name="hostile", version=1, input_schema=schema), value)
except InvalidInput as exc:
    print("refused:", str(exc)[:40], "...", str(exc)[-120:])
else:
    print("accepted")
"""


def validated_in_a_subprocess(schema: dict[str, Any], value: dict[str, Any]) -> str:
    """Return what validating `value` printed; fail if it has not finished within the guard."""
    assert len(json.dumps(value)) <= MAX_JSON_BYTES
    try:
        done = subprocess.run(
            [sys.executable, "-c", VALIDATE],
            input=json.dumps([schema, value]),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=GUARD_SECONDS,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "bpm.settings"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"validation had not finished after {GUARD_SECONDS}s: exponential matching")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def near_miss(room: int = 40) -> str:
    """Return the longest string of a's that ends in a mismatch and still fits the input limit."""
    return "a" * (MAX_JSON_BYTES - room) + "!"


def test_a_catastrophic_pattern_on_an_input_of_the_maximum_size_is_matched_in_linear_time():
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": HOSTILE}}}
    printed = validated_in_a_subprocess(schema, {"name": near_miss()})
    assert printed.startswith("refused: input.name:")
    assert "does not match" in printed


def test_a_catastrophic_pattern_property_with_no_additional_properties_is_linear_too():
    schema = {
        "type": "object",
        "patternProperties": {HOSTILE: {"type": "integer"}},
        "additionalProperties": False,
    }
    printed = validated_in_a_subprocess(schema, {near_miss(): 1})
    assert printed.startswith("refused: input:")
    assert "does not match any of the regexes" in printed


def test_a_catastrophic_pattern_on_property_names_is_linear_too():
    schema = {"type": "object", "propertyNames": {"pattern": HOSTILE}}
    printed = validated_in_a_subprocess(schema, {near_miss(): 1})
    assert printed.startswith("refused: input")


def test_a_matching_input_is_still_accepted():
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": HOSTILE}}}
    assert validated_in_a_subprocess(schema, {"name": "a" * 1000}) == "accepted"


STEP = StepDeclaration("a", "test.remote")


def declaration(schema: dict[str, Any]) -> SagaDeclaration:
    return SagaDeclaration(name="regexes", title="regexes", steps=(STEP,), input_schema=schema)


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"properties": {"a": {"type": "string", "pattern": r"^(a)\1$"}}}, r"'^(a)\\1$'"),
        ({"properties": {"a": {"type": "string", "pattern": "^(?!0)[0-9]+$"}}}, "'^(?!0)[0-9]+$'"),
        ({"patternProperties": {"(?<=x)y": {}}}, "'(?<=x)y' at /patternProperties/(?<=x)y"),
        ({"propertyNames": {"pattern": "(?=a)a"}}, "'(?=a)a' at /propertyNames/pattern"),
        ({"$defs": {"code": {"pattern": r"(\w)\1"}}}, r"'(\\w)\\1' at /$defs/code/pattern"),
    ],
    ids=["backreference", "lookahead", "lookbehind-property", "property-names", "in-defs"],
)
@pytest.mark.django_db
def test_syncing_a_pattern_re2_cannot_run_is_refused_naming_it(schema, named):
    with pytest.raises(DefinitionInvalid) as refused:
        definitions.sync_declaration(declaration(schema))
    assert named in str(refused.value)
    assert "RE2" in str(refused.value)
    assert not SagaDefinition.objects.filter(name="regexes").exists()


@pytest.mark.django_db
def test_unevaluated_properties_beside_pattern_properties_is_refused():
    schema = {"patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    with pytest.raises(DefinitionInvalid, match="unevaluatedProperties"):
        definitions.compose_version(declaration(schema), actor="test")


@pytest.mark.django_db
def test_the_admin_refuses_a_lookahead_pattern_with_a_form_error_naming_it(client):
    client.force_login(UserFactory(is_superuser=True))
    schema = {"properties": {"total": {"type": "string", "pattern": "^(?!0)[0-9]+$"}}}
    data = {
        "name": "regexes",
        "title": "regexes",
        "description": "",
        "input_schema": json.dumps(schema),
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "1",
        "steps-0-name": "a",
        "steps-0-action": "test.remote",
        "steps-0-compensation": "",
        "steps-0-kind": "COMPENSATABLE",
        "steps-0-max_attempts": "3",
        "steps-0-initial_backoff": "1.0",
        "steps-0-backoff_multiplier": "2.0",
        "steps-0-max_backoff": "60.0",
        "steps-0-jitter": "0.1",
        "steps-0-timeout": "30.0",
        "steps-0-queue": "default",
    }
    response = client.post(reverse("admin:bpm_sagadefinition_add"), data)
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["input_schema"])
    assert "'^(?!0)[0-9]+$' at /properties/total/pattern" in errors
    assert not SagaDefinition.objects.filter(name="regexes").exists()


@pytest.mark.django_db
def test_an_input_under_format_regex_must_be_a_pattern_re2_runs():
    declare("regex_format", STEP)
    definition = SagaDefinition.objects.get(name="regex_format")
    definition.input_schema = {"properties": {"rule": {"type": "string", "format": "regex"}}}
    services.validate_input(definition, {"rule": "^[a-z]+$"})
    with pytest.raises(InvalidInput, match=r"input\.rule"):
        services.validate_input(definition, {"rule": r"^(a)\1$"})


def test_the_dashboard_editor_leaves_patterns_to_the_server():
    html = render_to_string("dashboard/_saga_json_editor.html")
    assert "dashboard/json_editor.js" in html
    script = Path(finders.find("dashboard/json_editor.js")).read_text()
    assert "RegExp" not in script
    assert "patterns and formats are checked on saving" in script
