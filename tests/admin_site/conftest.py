"""Sagas in the states the admin acts on, and logged-in admin clients for each group."""

from __future__ import annotations

import pytest
from django.test import Client
from factories import UserFactory
from testkit import fresh, three_steps, with_pivot

from bpm import services
from bpm.declarations import RETRIABLE
from bpm.models import SagaInstance, SagaStatus


def stuck(world, drained, definition: str, step: str, **start) -> SagaInstance:
    """Return a saga of `definition` stuck because `step` ran out of its three attempts."""
    world.will(step, "fault", "fault", "fault")
    saga = services.saga_start(definition=definition, input={}, actor="test", **start)
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.STUCK
    return saga


@pytest.fixture
def stuck_after_pivot(the_world, drained) -> SagaInstance:
    """Return a saga stuck on the retriable step after its pivot: retry or abort, not compensate."""
    with_pivot()
    return stuck(the_world, drained, "with_pivot", "after", business_key="order-17")


@pytest.fixture
def stuck_without_pivot(the_world, drained) -> SagaInstance:
    """Return a saga stuck on its last, retriable step with no pivot: it may be compensated."""
    definition = three_steps(RETRIABLE)
    return stuck(the_world, drained, definition.name, "c")


@pytest.fixture
def completed_saga(the_world, drained) -> SagaInstance:
    with_pivot()
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    return fresh(saga)


def logged_in(username: str, group: str) -> Client:
    client = Client()
    client.force_login(UserFactory(username=username, groups=[group]))
    return client


@pytest.fixture
def operator() -> Client:
    """Return a client logged in as olga, an operator."""
    return logged_in("olga", "operators")


@pytest.fixture
def designer() -> Client:
    """Return a client logged in as dora, a designer: she composes definition versions."""
    return logged_in("dora", "designers")


@pytest.fixture
def reviewer() -> Client:
    """Return a client logged in as dave, a second designer, who reviews dora's drafts."""
    return logged_in("dave", "designers")


@pytest.fixture
def viewer() -> Client:
    """Return a client logged in as vera, a viewer."""
    return logged_in("vera", "viewers")
