"""The composer's `after` column: parallel steps composed in the admin, validated as in code."""

from __future__ import annotations

import html

import pytest
from test_admin_definitions import ADD, composed, problems, step

from bpm.models import SagaDefinition

pytestmark = pytest.mark.django_db


def test_a_designer_composes_a_diamond_with_after(designer):
    response = designer.post(
        ADD,
        composed(
            "fork",
            step(1, "a", compensation="test.remote", after="-"),
            step(2, "b", compensation="test.remote", after="a"),
            step(3, "c", compensation="test.remote", after="a"),
            step(4, "d", after="b, c"),
        ),
    )
    assert response.status_code == 302
    definition = SagaDefinition.objects.get(name="fork")
    assert [s.after for s in definition.steps.order_by("position")] == [
        [],
        ["a"],
        ["a"],
        ["b", "c"],
    ]


def test_a_blank_after_keeps_the_default_order(designer):
    designer.post(ADD, composed("line", step(1, "a"), step(2, "b")))
    definition = SagaDefinition.objects.get(name="line")
    assert [s.after for s in definition.steps.all()] == [None, None]


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ((step(1, "a", after="b"), step(2, "b")), "steps wait for each other in a cycle"),
        ((step(1, "a", after="nope"),), "step 'a' runs after 'nope', which is not a step"),
        ((step(1, "a", after="a"),), "step 'a' cannot run after itself"),
        ((step(1, "a"), step(2, "b", after="a, a")), "step 'b' names 'a' twice in after"),
        (
            (
                step(1, "a", compensation="test.remote", after="-"),
                step(2, "b", compensation="test.remote", after="-"),
                step(3, "p", kind="PIVOT", after="a"),
            ),
            "the pivot 'p' must run after every compensatable step, but does not wait for 'b'",
        ),
    ],
)
def test_an_invalid_order_is_refused_with_the_steps_named(designer, steps, problem):
    response = designer.post(ADD, composed("broken_order", *steps))
    assert problem in problems(response)
    assert html.escape(problem) in response.content.decode()
    assert not SagaDefinition.objects.filter(name="broken_order").exists()


def test_duplicating_a_version_shows_its_after_lists(designer, the_world):
    designer.post(
        ADD,
        composed(
            "fork2",
            step(1, "a", after="-"),
            step(2, "b", after="-"),
            step(3, "c", after="a, b"),
        ),
    )
    source = SagaDefinition.objects.get(name="fork2")
    page = designer.get(f"{ADD}?from={source.pk}").content.decode()
    assert 'value="-"' in page and 'value="a, b"' in page


def test_a_versions_page_says_what_each_step_waits_for_in_words(designer):
    designer.post(
        ADD,
        composed(
            "fork3", step(1, "a"), step(2, "b"), step(3, "c", after="-"), step(4, "d", after="b, c")
        ),
    )
    version = SagaDefinition.objects.get(name="fork3")
    page = designer.get(f"/admin/bpm/sagadefinition/{version.pk}/change/").content.decode()
    for words in ("starts with the saga", "the step before", "b, c"):
        assert words in page
