"""Step handlers registered by name, and the saga declarations made in code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from django.apps import apps

if TYPE_CHECKING:
    from bpm.context import StepContext
    from bpm.declarations import SagaDeclaration

HandlerFunc = Callable[["StepContext"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Handler:
    name: str
    func: HandlerFunc
    # Transactional handlers touch only this database: they run inside the outcome transaction
    # behind the barrier, which gives them exactly-once effect.
    transactional: bool


_handlers: dict[str, Handler] = {}
_sagas: dict[str, SagaDeclaration] = {}


def handler(name: str, *, transactional: bool = False) -> Callable[[HandlerFunc], HandlerFunc]:
    """Register the decorated function as the step handler called `name`."""

    def register(func: HandlerFunc) -> HandlerFunc:
        existing = _handlers.get(name)
        if existing and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"handler {name!r} is already registered by {existing.func!r}")
        _handlers[name] = Handler(name=name, func=func, transactional=transactional)
        return func

    return register


def get_handler(name: str) -> Handler:
    """Return the handler registered as `name`; KeyError if there is none."""
    return _handlers[name]


def handler_names() -> list[str]:
    """Return every registered handler name, sorted."""
    return sorted(_handlers)


def declare(saga: SagaDeclaration) -> SagaDeclaration:
    """Register a saga declared in code; `sync_definitions` turns it into database rows."""
    _sagas[saga.name] = saga
    return saga


def declarations() -> list[SagaDeclaration]:
    """Return the sagas declared in code, by name."""
    return [_sagas[name] for name in sorted(_sagas)]


def autodiscover() -> None:
    """Import `steps` then `sagas` of every installed app, as admin autodiscovery does."""
    for module_name in ("steps", "sagas"):
        for config in apps.get_app_configs():
            if find_spec(f"{config.name}.{module_name}") is not None:
                import_module(f"{config.name}.{module_name}")
