"""Why the notifications service refuses a request."""

from __future__ import annotations


class NotificationError(Exception):
    """Base for every refusal of the notifications service."""


class NotificationNotFound(NotificationError):
    """No notification has that id."""


class NotificationAlreadyRetracted(NotificationError):
    """The notification was retracted before; a message is retracted once."""
