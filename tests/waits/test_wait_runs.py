"""Wait steps run by in-process burst workers: signals, task tokens, human tasks, timeouts."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from testkit import drain, fresh, work
from waitkit import handed, signal_saga, task_saga, token_saga

from bpm import answers, clock, engine, services, sweeper
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bpm.models import EventType, SagaStatus, Signal, StepRun, StepStatus, Wait

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _forget_tokens():
    handed.clear()


def start(definition, **kwargs):
    return services.saga_start(definition=definition.name, input={}, actor="test", **kwargs)


def run_of(saga, step):
    return StepRun.objects.filter(saga=saga, step__name=step).order_by("-id").first()


def operator():
    user = User.objects.create_user("olga")
    user.groups.add(Group.objects.get(name="operators"))
    return User.objects.get(pk=user.pk)


# --- signals ---------------------------------------------------------------------------------


def test_a_signal_step_waits_without_a_lease_until_its_signal_comes(the_world):
    saga = start(signal_saga())
    work()
    run = run_of(saga, "wait_go")
    assert run.status == StepStatus.WAITING
    assert run.lease_owner is None and run.lease_expires_at is None
    assert fresh(saga).status == SagaStatus.RUNNING

    signal, duplicate = answers.signal_send(
        saga_id=str(saga.pk), name="go", payload={"colour": "green"}, user=operator()
    )
    assert not duplicate and signal.consumed_by_id == run.pk
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["wait_go"] == {"colour": "green"}
    received = saga.events.get(type=EventType.SIGNAL_RECEIVED)
    assert received.actor == "user:olga" and received.data == {"payload": {"colour": "green"}}


def test_a_signal_that_comes_before_the_step_waits_is_kept_and_consumed_when_reached(the_world):
    saga = start(signal_saga())
    engine.receive_signal(saga.pk, "go", {"early": True}, actor="test")
    assert Signal.objects.get(saga=saga).consumed_by is None
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["wait_go"] == {"early": True}
    assert Signal.objects.get(saga=saga).consumed_by == run_of(saga, "wait_go")
    # Kept on arrival, consumed when reached: both on the timeline.
    assert saga.events.filter(type=EventType.SIGNAL_RECEIVED).count() == 2


def test_a_repeated_signal_is_a_duplicate_and_another_payload_a_conflict(the_world):
    saga = start(signal_saga())
    work()
    assert engine.receive_signal(saga.pk, "go", {"n": 1}, actor="test")[1] is False
    assert engine.receive_signal(saga.pk, "go", {"n": 1}, actor="test")[1] is True
    with pytest.raises(Conflict, match="another payload"):
        engine.receive_signal(saga.pk, "go", {"n": 2}, actor="test")
    assert Signal.objects.filter(saga=saga).count() == 1


def test_fifty_senders_of_one_signal_consume_it_once(the_world):
    saga = start(signal_saga())
    work()
    outcomes: list[bool] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(50)

    def send() -> None:
        try:
            barrier.wait()
            outcomes.append(engine.receive_signal(saga.pk, "go", {"n": 1}, actor="test")[1])
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(outcomes) == [False] + [True] * 49
    assert fresh(saga).context["wait_go"] == {"n": 1}
    assert run_of(saga, "wait_go").events.filter(type=EventType.STEP_SUCCEEDED).count() == 1


def test_a_wait_past_its_timeout_fails_and_the_saga_compensates_before_the_pivot(the_world):
    saga = start(signal_saga(timeout=30))
    work()
    clock.advance(20)
    assert sweeper.sweep_once().waits_expired == 0
    clock.advance(11)
    assert sweeper.sweep_once().waits_expired == 1
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["step"] == "wait_go"
    assert the_world.effects == [("a", "FORWARD"), ("a", "COMPENSATION")]
    assert saga.events.filter(type=EventType.WAIT_TIMED_OUT).count() == 1
    # A signal that comes late finds the saga finished.
    with pytest.raises(Conflict, match="COMPENSATED"):
        engine.receive_signal(saga.pk, "go", {}, actor="test")


def test_a_waiting_saga_is_quiet_not_stalled(the_world, settings):
    settings.BPM_STALL_AFTER = 10
    saga = start(signal_saga(timeout=3600))
    work()
    clock.advance(60)
    assert sweeper.sweep_once().stalled == 0
    assert fresh(saga).status == SagaStatus.RUNNING


def test_a_saga_flagged_past_its_deadline_cancels_its_wait(the_world):
    saga = start(signal_saga(timeout=3600), deadline=clock.now())
    work()
    clock.advance(5)
    assert sweeper.sweep_once().timed_out == 1
    assert run_of(saga, "wait_go").status == StepStatus.CANCELLED
    # The kept signal waits for an operator's retry of the stuck saga.
    engine.receive_signal(saga.pk, "go", {"late": 1}, actor="test")
    services.saga_retry(saga_id=saga.pk, reason="go on", actor="test")
    work()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert fresh(saga).context["wait_go"] == {"late": 1}


def test_a_signal_needs_a_step_waiting_for_its_name(the_world):
    saga = start(signal_saga())
    with pytest.raises(InvalidInput, match="waits for no signal 'stop'"):
        answers.signal_send(saga_id=str(saga.pk), name="stop", payload={}, user=operator())


# --- task tokens -----------------------------------------------------------------------------


def test_a_task_token_handed_on_by_the_action_completes_the_step(the_world):
    saga = start(token_saga())
    work()
    run = run_of(saga, "check")
    assert run.status == StepStatus.WAITING
    [token] = handed
    assert token.startswith("tt_") and len(token) > 40
    # Only the hash is kept.
    assert Wait.objects.get(run=run).token_hash != token
    answers.token_succeed(token=token, output={"score": 3})
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["check"] == {"score": 3}


def test_a_task_token_is_single_use(the_world):
    start(token_saga())
    work()
    [token] = handed
    answers.token_succeed(token=token, output={})
    with pytest.raises(Conflict, match="already used"):
        answers.token_succeed(token=token, output={})
    with pytest.raises(Conflict, match="already used"):
        answers.token_fail(token=token, code="NO", message="no")


def test_a_failed_task_token_refuses_the_step_and_the_saga_compensates(the_world):
    saga = start(token_saga())
    work()
    answers.token_fail(token=handed[0], code="FRAUD_SUSPECTED", message="too risky")
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["code"] == "FRAUD_SUSPECTED"
    # The refused step is not compensated; the one before it is.
    assert ("check", "COMPENSATION") not in the_world.effects
    assert ("a", "COMPENSATION") in the_world.effects


def test_an_expired_task_token_is_refused_and_its_step_compensated(the_world):
    saga = start(token_saga(timeout=10))
    work()
    clock.advance(11)
    sweeper.sweep_once()
    work()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    # Its action ran (it handed the token on): the timed-out step is compensated too.
    assert ("check", "COMPENSATION") in the_world.effects
    with pytest.raises(Conflict, match="already used, or its step is over"):
        answers.token_succeed(token=handed[0], output={})


def test_an_unknown_token_is_not_found(the_world):
    with pytest.raises(NotFound):
        answers.token_succeed(token="tt_" + "A" * 43, output={})
    with pytest.raises(NotFound):
        answers.token_succeed(token="nonsense", output={})


def test_an_answer_that_comes_before_the_action_returns_is_applied_when_it_does(the_world):
    saga = start(token_saga(action="test.answer_at_once"))
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["check"] == {"early": 1}
    assert saga.events.filter(type=EventType.STEP_WAITING).count() == 0


def test_an_answer_between_two_attempts_of_the_action_is_kept_for_the_next(the_world):
    the_world.will("check", "fault")  # the first attempt hands the token on, then fails
    saga = start(token_saga())
    work()
    assert run_of(saga, "check").status == StepStatus.PENDING
    answers.token_succeed(token=handed[0], output={"score": 1})
    with pytest.raises(Conflict, match="already used"):
        answers.token_succeed(token=handed[0], output={"score": 2})
    clock.advance(5)
    drain()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["check"] == {"score": 1}
    # The retry handed on the same token.
    assert len(handed) == 2 and handed[0] == handed[1]


# --- human tasks -----------------------------------------------------------------------------


def member(name="rita", group="reviewers"):
    user = User.objects.create_user(name)
    user.groups.add(Group.objects.get(name=group))
    return User.objects.get(pk=user.pk)


def test_a_member_claims_and_completes_a_task_whose_data_becomes_the_output(the_world):
    saga = start(task_saga())
    work()
    rita = member()
    [task] = answers.tasks_for(rita)
    assert task.title == "Review it" and task.claimed_by is None
    answers.task_claim(task_id=task.pk, user=rita)
    answers.task_complete(task_id=task.pk, user=rita, data={"approved": True, "note": "fine"})
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["review"] == {"approved": True, "note": "fine"}
    kinds = [(e.type, e.actor) for e in saga.events.filter(type__startswith="TASK_")]
    assert kinds == [(EventType.TASK_CLAIMED, "user:rita"), (EventType.TASK_COMPLETED, "user:rita")]
    assert list(answers.tasks_for(rita)) == []


def test_a_rejected_task_refuses_its_step_and_the_saga_compensates(the_world):
    saga = start(task_saga())
    work()
    rita = member()
    task = answers.tasks_for(rita).get()
    with pytest.raises(InvalidInput, match="reason"):
        answers.task_reject(task_id=task.pk, user=rita, reason=" ")
    answers.task_reject(task_id=task.pk, user=rita, reason="the customer is unknown to us")
    work()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["code"] == "TASK_REJECTED"
    assert saga.failure["message"] == "the customer is unknown to us"


def test_the_form_is_validated_on_the_server(the_world):
    start(task_saga())
    work()
    rita = member()
    task = answers.tasks_for(rita).get()
    assert answers.form_errors(task, {"note": "x" * 60, "limit": -1}) == {
        "approved": "This field is required.",
        "limit": "-1 is less than the minimum of 0",
        "note": f"'{'x' * 60}' is too long",
    }
    with pytest.raises(InvalidInput, match="data"):
        answers.task_complete(task_id=task.pk, user=rita, data={"approved": "yes"})


def test_only_members_work_a_task_and_a_claim_belongs_to_its_claimer(the_world):
    start(task_saga())
    work()
    Group.objects.get_or_create(name="others")
    rita, sam, outsider = member("rita"), member("sam"), member("otto", "others")
    task = answers.tasks_for(rita).get()
    assert list(answers.tasks_for(outsider)) == []
    with pytest.raises(PermissionDenied, match="not in the 'reviewers' group"):
        answers.task_claim(task_id=task.pk, user=outsider)
    answers.task_claim(task_id=task.pk, user=rita)
    with pytest.raises(Conflict, match="claimed by rita"):
        answers.task_complete(task_id=task.pk, user=sam, data={"approved": True})
    with pytest.raises(Conflict, match="claimed by rita"):
        answers.task_unclaim(task_id=task.pk, user=sam)
    answers.task_unclaim(task_id=task.pk, user=rita)
    answers.task_complete(task_id=task.pk, user=sam, data={"approved": False})
    with pytest.raises(Conflict, match="closed"):
        answers.task_reject(task_id=task.pk, user=rita, reason="late")


def test_a_task_expires_with_its_timeout(the_world):
    saga = start(task_saga(timeout=100))
    work()
    clock.advance(101)
    sweeper.sweep_once()
    work()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    assert list(answers.open_tasks()) == []
