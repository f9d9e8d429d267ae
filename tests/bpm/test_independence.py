"""bpm knows no participant: another Django project could install it without the shop's apps.

Every module under bpm/ (migrations, commands and tests helpers included) is parsed, not imported:
an `import`, a `from … import`, or a module named as a string to importlib.import_module,
django's import_string, include() or __import__ would tie the engine to an app that uses it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTICIPANTS = ("orders", "payments", "notifications")
# Calls whose first argument names a module to import.
IMPORTING_CALLS = {"import_module", "import_string", "include", "__import__"}


def modules_named(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Yield (line, dotted module name) for every module that `tree` imports or names to import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            name = function.id if isinstance(function, ast.Name) else name
            first = node.args[0]
            if (
                name in IMPORTING_CALLS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value


def participant_imports(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Return "path:line module" for each module under `package` naming a `forbidden` one."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in modules_named(tree):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} {module}")
    return found


def test_no_module_under_bpm_imports_a_participant():
    assert participant_imports("bpm", PARTICIPANTS) == []


@pytest.mark.parametrize("participant", PARTICIPANTS)
def test_a_participant_imports_no_other_participant(participant):
    others = tuple(name for name in PARTICIPANTS if name != participant)
    assert participant_imports(participant, others) == []


@pytest.mark.parametrize(
    "source",
    [
        "import orders",
        "import payments.services as p",
        "from notifications.models import Notification",
        "import importlib\nimportlib.import_module('orders.sagas')",
        "from django.utils.module_loading import import_string\nimport_string('payments.x.y')",
        "from django.urls import include\ninclude('orders.api.urls')",
        "__import__('notifications')",
    ],
)
def test_the_check_sees_each_way_of_importing_a_module(source):
    assert [module for _, module in modules_named(ast.parse(source))][-1].split(".")[0] in (
        PARTICIPANTS
    )


def test_the_check_ignores_relative_imports_and_lookalike_names():
    source = "from . import orders\nimport ordersheet\nfrom bpm.orders_view import x"
    assert [module for _, module in modules_named(ast.parse(source))] == [
        "ordersheet",
        "bpm.orders_view",
    ]
