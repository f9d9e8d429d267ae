from __future__ import annotations

import pytest
from testkit import declare

from bpm import definitions, services
from bpm.declarations import PIVOT, RETRIABLE, SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.errors import DefinitionInvalid, InvalidInput, NotFound
from bpm.models import SagaDefinition

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ((Step("a", "no.such.handler"),), "no handler registered as 'no.such.handler'"),
        (
            (Step("a", "test.remote", kind=PIVOT), Step("b", "test.remote", kind=PIVOT)),
            "at most one pivot",
        ),
        ((Step("a", "test.remote", kind=PIVOT), Step("b", "test.remote")), "must be retriable"),
        ((Step("a", "test.remote", "test.remote", kind=RETRIABLE),), "carries no compensation"),
        ((Step("a", "test.remote"), Step("a", "test.remote")), "step names must be unique: a"),
        ((Step("a", "test.remote", queue="nowhere"),), "queue 'nowhere' is not configured"),
        ((), "at least one step"),
    ],
)
def test_an_invalid_definition_is_refused_with_what_is_wrong(steps, problem):
    with pytest.raises(DefinitionInvalid, match=problem):
        declare("bad", *steps)
    assert not SagaDefinition.objects.filter(name="bad").exists()


def test_syncing_makes_a_new_version_only_when_the_declaration_changed():
    first = declare("evolving", Step("a", "test.remote"))
    again = declare("evolving", Step("a", "test.remote"))
    changed = declare("evolving", Step("a", "test.remote"), Step("b", "test.remote"))
    assert (first.version, again.version, changed.version) == (1, 1, 2)
    assert definitions.resolve("evolving").version == 2


def test_an_instance_keeps_the_version_it_started_with():
    declare("evolving", Step("a", "test.remote"))
    saga = services.saga_start(definition="evolving", input={}, actor="test")
    declare("evolving", Step("a", "test.remote"), Step("b", "test.remote"))
    saga.refresh_from_db()
    assert saga.definition.version == 1


def test_place_order_is_synced_after_migrate():
    assert definitions.resolve("place_order").steps.count() == 4


def test_starting_an_unknown_definition_or_version_says_what_exists():
    declare("known", Step("a", "test.remote"))
    with pytest.raises(NotFound, match=r"no active saga definition named 'nope'; known: .*known"):
        services.saga_start(definition="nope", input={}, actor="test")
    with pytest.raises(NotFound, match="'known' has no version 7 \\(versions 1 to 1\\)"):
        services.saga_start(definition="known", input={}, actor="test", version=7)


def test_input_that_fails_the_schema_names_the_failing_path():
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name="typed",
            title="typed",
            steps=(Step("a", "test.remote"),),
            input_schema={
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
            },
        )
    )
    with pytest.raises(InvalidInput, match=r"input.items\[1\]: 'x' is not of type 'integer'"):
        services.saga_start(definition="typed", input={"items": [1, "x"]}, actor="test")
    with pytest.raises(InvalidInput, match="input: must be a JSON object, not list"):
        services.saga_start(definition="typed", input=[1], actor="test")
    assert not definition.instances.exists()


def test_a_repeated_idempotency_key_returns_the_first_saga_and_a_different_input_conflicts():
    from bpm.errors import Conflict

    declare("keyed", Step("a", "test.remote"))
    first = services.saga_start(definition="keyed", input={"n": 1}, actor="t", idempotency_key="k1")
    again = services.saga_start(definition="keyed", input={"n": 1}, actor="t", idempotency_key="k1")
    assert first.id == again.id
    with pytest.raises(Conflict, match="already used"):
        services.saga_start(definition="keyed", input={"n": 2}, actor="t", idempotency_key="k1")
