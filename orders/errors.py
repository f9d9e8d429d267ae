"""Why the orders service refuses a request.

Each refusal is also the engine's NotFound or Conflict, which the API answers with 404 or 409.
"""

from __future__ import annotations

from bpm.errors import Conflict, NotFound, SagaError


class OrderError(SagaError):
    """Base for every refusal of the orders service."""


class OrderNotFound(OrderError, NotFound):
    """No order has that id."""


class OrderLocked(OrderError, Conflict):
    """The order belongs to another saga: only the saga that created it may decide it."""


class OrderAlreadyDecided(OrderError, Conflict):
    """The order has left PENDING; a decided order never changes again."""


class OrderConflict(OrderError, Conflict):
    """The saga already created an order, with different details."""
