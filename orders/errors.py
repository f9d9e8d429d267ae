"""Why the orders service refuses a request."""

from __future__ import annotations


class OrderError(Exception):
    """Base for every refusal of the orders service."""


class OrderNotFound(OrderError):
    """No order has that id."""


class OrderLocked(OrderError):
    """The order belongs to another saga: only the saga that created it may decide it."""


class OrderAlreadyDecided(OrderError):
    """The order has left PENDING; a decided order never changes again."""


class OrderConflict(OrderError):
    """The saga already created an order, with different details."""
