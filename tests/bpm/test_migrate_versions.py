"""The pure check of whether a saga may move to another version of its definition."""

from __future__ import annotations

from bpm.states import SagaStatus, StepKind
from bpm.versions import SagaShape, StepShape, VersionShape, refusal

C, PIVOT, R = StepKind.COMPENSATABLE, StepKind.PIVOT, StepKind.RETRIABLE
A = StepShape("reserve", "stock.reserve", "stock.release", C)
B = StepShape("charge", "pay.charge", "pay.refund", C)
SHIP = StepShape("ship", "ship.send", "", R)
V1 = VersionShape("order", 1, True, (A, B, SHIP))
STUCK_ON_CHARGE = SagaShape(SagaStatus.STUCK, ran=("reserve", "charge"), next_step="charge")


def v2(*steps: StepShape, name: str = "order", version: int = 2, published: bool = True):
    return VersionShape(name, version, published, steps)


def test_a_saga_moves_to_a_version_with_the_same_steps():
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, B, SHIP)) == ""


def test_a_step_added_after_the_current_one_is_allowed():
    audit = StepShape("audit", "audit.log", "", R)
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, B, audit, SHIP)) == ""


def test_a_running_saga_between_steps_moves():
    saga = SagaShape(SagaStatus.RUNNING, ran=("reserve", "charge"), next_step="charge")
    assert refusal(saga, V1, v2(A, B, SHIP)) == ""


def test_steps_not_reached_may_change_or_go():
    changed = StepShape("ship", "ship.courier", "", R)
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, B, changed)) == ""
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, B)) == ""


def test_a_renamed_step_already_run_is_refused():
    renamed = StepShape("take_payment", "pay.charge", "pay.refund", C)
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, renamed, SHIP)) == (
        "step charge already ran but v2 has no step charge"
    )


def test_a_removed_step_already_run_is_refused():
    assert refusal(STUCK_ON_CHARGE, V1, v2(B, SHIP)) == (
        "step reserve already ran but v2 has no step reserve"
    )


def test_a_changed_action_is_refused():
    other = StepShape("charge", "pay.charge_v2", "pay.refund", C)
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, other, SHIP)) == (
        "step charge already ran with action pay.charge but v2 runs pay.charge_v2"
    )


def test_a_changed_compensation_is_refused():
    other = StepShape("reserve", "stock.reserve", "", C)
    assert refusal(STUCK_ON_CHARGE, V1, v2(other, B, SHIP)) == (
        "step reserve already ran; its compensation is stock.release but in v2 none"
    )


def test_a_changed_kind_is_refused():
    pivot = StepShape("charge", "pay.charge", "pay.refund", PIVOT)
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, pivot, SHIP)) == (
        "step charge already ran as COMPENSATABLE but is PIVOT in v2"
    )


def test_a_new_step_before_one_already_run_is_refused():
    check = StepShape("check", "stock.check", "", C)
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, check, B, SHIP)) == (
        "step check of v2 comes before steps already run (reserve, charge) and would run out"
        " of order"
    )


def test_steps_already_run_in_another_order_are_refused():
    assert refusal(STUCK_ON_CHARGE, V1, v2(B, A, SHIP)) == (
        "v2 runs the steps already run in another order"
    )


def test_a_next_step_missing_from_the_target_is_refused():
    saga = SagaShape(SagaStatus.RUNNING, ran=("reserve",), next_step="charge")
    assert refusal(saga, V1, v2(A, SHIP)) == "its next step charge does not exist in v2"


def test_a_version_of_another_definition_is_refused():
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, B, SHIP, name="refund")) == (
        "refund v2 is a version of another definition (order): a saga moves only between"
        " versions of its own"
    )


def test_the_same_version_is_refused():
    assert refusal(STUCK_ON_CHARGE, V1, V1) == "it already runs order v1"


def test_a_target_not_published_is_refused():
    assert refusal(STUCK_ON_CHARGE, V1, v2(A, B, SHIP, published=False)) == (
        "order v2 is not published"
    )


def test_an_older_published_version_is_a_target_like_any_other():
    saga = SagaShape(SagaStatus.STUCK, ran=("reserve",), next_step="reserve")
    assert refusal(saga, v2(A, B, SHIP, version=3), VersionShape("order", 1, True, (A, B))) == ""


def test_only_running_or_stuck_sagas_move():
    for status in (
        SagaStatus.COMPENSATING,
        SagaStatus.COMPLETED,
        SagaStatus.COMPENSATED,
        SagaStatus.ABORTED,
    ):
        saga = SagaShape(status, ran=("reserve",))
        assert refusal(saga, V1, v2(A, B, SHIP)) == (
            f"it is {status}: only RUNNING or STUCK sagas move"
        )


def test_a_step_in_flight_is_refused():
    live = SagaShape(
        SagaStatus.RUNNING, ran=("reserve",), in_flight="reserve", in_flight_lease_live=True
    )
    assert refusal(live, V1, v2(A, B, SHIP)) == (
        "step reserve is running on a worker: a saga moves only between steps (try again once"
        " the step has finished)"
    )
    expired = SagaShape(SagaStatus.RUNNING, ran=("reserve",), in_flight="reserve")
    assert refusal(expired, V1, v2(A, B, SHIP)) == (
        "step reserve was running on a worker whose lease expired: wait for the sweeper to"
        " settle it"
    )


def test_a_saga_that_ran_nothing_moves_when_its_first_step_exists():
    saga = SagaShape(SagaStatus.RUNNING, ran=(), next_step="reserve")
    assert refusal(saga, V1, v2(A, B)) == ""
    assert refusal(saga, V1, v2(B)) == "its next step reserve does not exist in v2"
