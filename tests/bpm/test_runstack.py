"""runstack's plan: the engine's processes, and the demonstrations the site names in a setting."""

from __future__ import annotations

import pytest
from django.core.management import get_commands
from django.core.management.base import CommandError
from django.test import override_settings

from bpm.management.commands.runstack import Command


def planned(*, demo: bool = True) -> dict[str, list[str]]:
    """Return each planned process's manage.py arguments, by name."""
    children = Command().plan_children(port=8000, demo=demo)
    return {child.name: child.command_line()[2:] for child in children}


def test_the_sites_demo_trickle_is_planned_after_the_engines_processes():
    children = Command().plan_children(port=8000, demo=True)
    assert [child.name for child in children] == ["worker-1", "worker-2", "sweeper", "web", "demo"]
    assert children[-1].command_line()[1:] == ["manage.py", "demo_trickle"]
    assert children[-1].may_finish
    assert "demo_trickle" in get_commands()


@override_settings(BPM_RUNSTACK_DEMO_COMMANDS={"trickle": ["demo_trickle", "--interval", "1"]})
def test_it_starts_each_demo_command_the_setting_names_with_its_arguments():
    assert planned()["trickle"] == ["demo_trickle", "--interval", "1"]
    assert "demo" not in planned()


def test_no_demo_starts_no_demonstration():
    assert set(planned(demo=False)) == {"worker-1", "worker-2", "sweeper", "web"}


def test_a_site_that_names_no_demonstration_gets_none(settings):
    del settings.BPM_RUNSTACK_DEMO_COMMANDS
    assert set(planned()) == {"worker-1", "worker-2", "sweeper", "web"}


@pytest.mark.parametrize("setting", [["demo_trickle"], {"demo": []}, {"demo": "demo_trickle"}])
def test_a_malformed_demo_setting_is_refused_saying_what_it_must_be(setting):
    with (
        override_settings(BPM_RUNSTACK_DEMO_COMMANDS=setting),
        pytest.raises(
            CommandError, match="must map each process name to a non-empty list of strings"
        ),
    ):
        planned()


@override_settings(BPM_RUNSTACK_DEMO_COMMANDS={"demo": ["no_such_command"]})
def test_a_missing_demo_command_is_refused_before_anything_starts_and_suggests_no_demo():
    command = Command()
    with pytest.raises(CommandError, match=r"no_such_command \(or pass --no-demo\)"):
        command.check_commands_exist(command.plan_children(port=8000, demo=True))
