"""A payments service on a real local port, allowed by the outbound policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from http_payments_service import PaymentsService, running
from http_step_sagas import SECRET


@pytest.fixture
def outbound(settings: Any) -> Any:
    """Allow the loopback address (listed literally) and give the payments token as a secret."""
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.BPM_HTTP_SECRETS = {"PAYMENTS_TOKEN": SECRET}
    return settings


@pytest.fixture
def payments(outbound: Any) -> Iterator[PaymentsService]:
    with running() as service:
        yield service
