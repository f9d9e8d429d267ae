from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from testkit import fresh, with_pivot

from bpm.models import EventType, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def stuck_saga(the_world, drained):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga_id = run("start_saga", "with_pivot", "--input", "{}").strip()
    drained()
    return SagaInstance.objects.get(pk=saga_id)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start_saga", "nope", "--input", "{}"], "no active saga definition named 'nope'"),
        (["start_saga", "with_pivot", "--input", "{bad"], "--input is not valid JSON"),
        (["start_saga", "with_pivot", "--input", "[]"], "input: must be a JSON object"),
        (["start_saga", "with_pivot", "--input-file", "/no/such.json"], "no such file"),
        (
            ["start_saga", "with_pivot", "--input", "{}", "--deadline", "-1"],
            "must be a positive number",
        ),
        (["saga_show", "not-a-uuid"], "not a UUID"),
    ],
)
def test_bad_input_to_a_command_says_what_is_wrong_and_starts_nothing(the_world, args, message):
    with_pivot()
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert SagaInstance.objects.count() == 0


def test_start_saga_reads_its_input_from_a_file(the_world, tmp_path):
    with_pivot()
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"order": 7}))
    saga_id = run("start_saga", "with_pivot", "--input-file", str(path), "--business-key", "o-7")
    saga = SagaInstance.objects.get(pk=saga_id.strip())
    assert (saga.input, saga.business_key) == ({"order": 7}, "o-7")


def test_an_action_command_previews_unless_told_yes(stuck_saga):
    out = run("saga_retry", str(stuck_saga.id), "--reason", "fixed")
    assert "run after" in out and "Nothing was changed" in out
    assert fresh(stuck_saga).status == SagaStatus.STUCK
    out = run("saga_retry", str(stuck_saga.id), "--reason", "fixed", "--user", "alice", "--yes")
    assert "is now RUNNING" in out
    assert stuck_saga.events.filter(type=EventType.OPERATOR_RETRY, actor="user:alice").exists()


def test_action_commands_refuse_what_the_state_forbids(stuck_saga):
    run("saga_abort", str(stuck_saga.id), "--reason", "by hand", "--yes")
    for command in ("saga_retry", "saga_skip", "saga_compensate", "saga_abort"):
        with pytest.raises(CommandError, match="it is ABORTED, not STUCK"):
            run(command, str(stuck_saga.id), "--reason", "again", "--yes")


def test_skip_refuses_output_that_is_not_json(stuck_saga):
    with pytest.raises(CommandError, match="--output is not valid JSON"):
        run("saga_skip", str(stuck_saga.id), "--reason", "x", "--output", "nope", "--yes")
    assert fresh(stuck_saga).status == SagaStatus.STUCK


def test_saga_show_prints_the_steps_and_the_timeline_with_errors(stuck_saga):
    out = run("saga_show", str(stuck_saga.id), "--tracebacks")
    assert "STUCK (retries exhausted)" in out
    assert "ATTEMPT_FAILED" in out and "after is unreachable" in out
    assert "Traceback" in out


def test_sweep_once_reports_what_it_did(the_world):
    assert "leases expired: 0" in run("sweep")
