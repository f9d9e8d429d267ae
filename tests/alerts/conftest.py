"""Fixtures of the alert tests: a real local HTTP server that receives webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from webhook_receiver import Receiver, start_receiver


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    """Return a running webhook receiver; 127.0.0.1 is an allowed host for the test."""
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()
