"""manage.py batch_repair: previews unless told --yes."""

from __future__ import annotations

from io import StringIO

import pytest
from batch_kit import ONCE, SCHEMA, mailing
from django.core.management import CommandError, call_command
from testkit import work

from benchmarks.stuck_sagas import seed_stuck
from bpm import definitions
from bpm.declarations import SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.models import Batch, EventType, SagaEvent, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stuck(the_world):
    return seed_stuck(mailing(), 3, {"email": "a@example.com"})


def run(*args: str) -> str:
    out = StringIO()
    call_command("batch_repair", *args, stdout=out)
    return out.getvalue()


def test_without_yes_it_only_previews(stuck):
    out = run("retry", "--filter", "status=STUCK&definition=mailing", "--patch", '{"tier": "a"}')
    assert "3 sagas match." in out and "3  run send; run confirm" in out
    assert "Nothing was changed" in out and not Batch.objects.exists()


def test_with_yes_and_a_reason_it_queues_the_batch_for_the_workers(stuck):
    out = run("abort", "--filter", "status=STUCK", "--reason", "gone", "--user", "", "--yes")
    batch = Batch.objects.get()
    assert f"batch {batch.pk}: abort of 3 sagas queued" in out
    work()
    assert SagaInstance.objects.filter(status=SagaStatus.ABORTED).count() == 3
    event = SagaEvent.objects.filter(type=EventType.OPERATOR_ABORT).first()
    assert event is not None and event.actor.startswith("user:") and event.data["batch"] == batch.pk


def test_it_says_what_is_wrong(stuck):
    with pytest.raises(CommandError, match="--reason is required"):
        run("abort", "--yes")
    with pytest.raises(CommandError, match=r"filter\.status"):
        run("abort", "--filter", "status=NOPE")
    with pytest.raises(CommandError, match="--patch is not valid JSON"):
        run("retry", "--patch", "{")
    with pytest.raises(CommandError, match="no user 'nobody'"):
        run("abort", "--user", "nobody")


def test_it_migrates_to_the_version_given(stuck):
    definitions.sync_declaration(
        SagaDeclaration(
            name="mailing",
            title="Mailing",
            input_schema=SCHEMA,
            steps=(
                Step("send", "test.local", "test.local", retry=ONCE),
                Step("confirm", "test.local", "test.local", retry=ONCE),
                Step("archive", "test.local", "test.local", retry=ONCE),
            ),
        )
    )
    query = "status=STUCK&definition=mailing"
    out = run("migrate", "--filter", query, "--to-version", "2")
    assert "3  move from v1 to v2; run send; run confirm; run archive" in out
    with pytest.raises(CommandError, match=r"not '2\.0'"):
        run("migrate", "--filter", query, "--to-version", "2.0")
    run("migrate", "--filter", query, "--to-version", "2", "--reason", "archive", "--yes")
    work()
    assert set(SagaInstance.objects.values_list("definition__version", flat=True)) == {2}
    assert SagaEvent.objects.filter(type=EventType.SAGA_MOVED).count() == 3
