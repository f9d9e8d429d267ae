"""API clients signed in with a token as each role, and the requests the tests repeat."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def client_for(user) -> APIClient:
    """Return an API client that sends the user's token, as `drf_create_token` makes it."""
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    api.user = user
    return api


@pytest.fixture
def client_of() -> Callable[..., APIClient]:
    """Return a maker of token clients for a given user."""
    return client_for


@pytest.fixture
def as_role() -> Callable[..., APIClient]:
    """Return a maker of token clients: as_role("operators", username="olga")."""

    def make(group: str, **fields) -> APIClient:
        return client_for(UserFactory(groups=[group], **fields))

    return make


@pytest.fixture
def operator(as_role) -> APIClient:
    return as_role("operators", username="olga")


@pytest.fixture
def viewer(as_role) -> APIClient:
    return as_role("viewers", username="vera")


@pytest.fixture
def shop(as_role) -> APIClient:
    """A client's token: what an online shop's backend calls the API with."""
    return as_role("clients", username="shop", is_staff=False)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
