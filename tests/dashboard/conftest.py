"""Fixtures every dashboard test file uses."""

from __future__ import annotations

import pytest
from factories import UserFactory


@pytest.fixture
def viewer(client):
    """The test client, logged in as vera of the viewers group."""
    client.force_login(UserFactory(username="vera", groups=["viewers"]))
    return client
