"""Why the notifications service refuses a request.

Each refusal is also the engine's NotFound or Conflict, as every caller of a service expects.
"""

from __future__ import annotations

from bpm.errors import Conflict, NotFound, SagaError


class NotificationError(SagaError):
    """Base for every refusal of the notifications service."""


class NotificationNotFound(NotificationError, NotFound):
    """No notification has that id."""


class NotificationAlreadyRetracted(NotificationError, Conflict):
    """The notification was retracted before; a message is retracted once."""
