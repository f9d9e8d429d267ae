"""What /metrics exports: sagas from the database, steps and sagas as the workers recorded them,
queues, workers and the sweeper from Redis, and the API's requests by route template."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from scraping import scrape, value
from test_readyz import register_worker
from testkit import declare, drain, three_steps, work

from bpm import clock, engine, metrics, registry, services
from bpm.context import StepContext
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaStatus, StepRun

pytestmark = pytest.mark.django_db(transaction=True)

SAGA = "three_compensatable_remote"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


def start(definition: str = SAGA) -> None:
    services.saga_start(definition=definition, input={}, actor="test")


def test_sagas_are_counted_by_definition_and_status_and_stuck_ones_by_reason(
    client: Client, the_world
) -> None:
    three_steps()
    start()
    start()
    drain()
    the_world.will("a", "fault", "fault", "fault")
    the_world.will("a", "fault", "fault", "fault", direction="COMPENSATION")
    start()
    drain()

    samples = scrape(client)

    assert value(samples, "bpm_sagas", definition=SAGA, status=SagaStatus.COMPLETED) == 2
    assert value(samples, "bpm_sagas", definition=SAGA, status=SagaStatus.STUCK) == 1
    assert value(samples, "bpm_stuck_sagas", definition=SAGA, reason="COMPENSATION_FAILED") == 1
    assert value(samples, "bpm_metrics_source_up", source="database") == 1


def test_each_attempt_is_counted_and_timed_by_step_direction_and_outcome(
    client: Client, the_world
) -> None:
    three_steps()
    before = scrape(client)
    the_world.will("b", "fault", "refuse:NO")
    start()
    drain()

    after = scrape(client)

    def added(name: str, step: str, direction: str, outcome: str) -> float:
        labels = {"definition": SAGA, "step": step, "direction": direction, "outcome": outcome}
        return value(after, name, **labels) - value(before, name, **labels)

    assert added("bpm_step_attempts_total", "a", "forward", "succeeded") == 1
    assert added("bpm_step_attempts_total", "b", "forward", "fault") == 1
    assert added("bpm_step_attempts_total", "b", "forward", "refused") == 1
    assert added("bpm_step_attempts_total", "a", "compensation", "succeeded") == 1
    assert added("bpm_step_attempts_total", "c", "forward", "succeeded") == 0
    assert added("bpm_step_duration_seconds_count", "b", "forward", "refused") == 1
    outcome = {"definition": SAGA, "outcome": "compensated"}
    assert (
        value(after, "bpm_saga_duration_seconds_count", **outcome)
        - value(before, "bpm_saga_duration_seconds_count", **outcome)
        == 1
    )


def test_a_saga_is_timed_from_start_to_end_once_it_completes(client: Client, the_world) -> None:
    three_steps()
    before = scrape(client)
    start()
    clock.advance(7)  # inside the 10s bucket, past the 5s one
    drain()

    after = scrape(client)

    labels = {"definition": SAGA, "outcome": "completed"}
    for bucket, added in [("5.0", 0), ("10.0", 1), ("+Inf", 1)]:
        name = "bpm_saga_duration_seconds_bucket"
        assert (
            value(after, name, **labels, le=bucket) - value(before, name, **labels, le=bucket)
            == added
        ), bucket


def test_an_outcome_whose_transaction_rolls_back_is_not_counted(client: Client) -> None:
    three_steps()
    start()
    run = StepRun.objects.get()
    labels = (SAGA, "a", "forward", "succeeded")
    counted = metrics.step_attempts.labels(*labels)._value.get()

    with transaction.atomic():
        claimed = engine.claim(run.id, str(run.token), None, actor="test")
        assert claimed is not None
        view, claimed_run, _, _ = claimed
        succeeded = engine.Outcome(engine.OutcomeKind.SUCCEEDED, output={})
        engine.record(view, claimed_run, succeeded, actor="test")
        transaction.set_rollback(True)

    assert metrics.step_attempts.labels(*labels)._value.get() == counted
    work()
    assert metrics.step_attempts.labels(*labels)._value.get() == counted + 1


def test_queues_workers_and_the_sweeper_are_read_from_redis(client: Client) -> None:
    three_steps()
    start()
    start()
    register_worker("w1")
    call_command("sweep", stdout=open("/dev/null", "w"))  # noqa: SIM115

    samples = scrape(client)

    assert value(samples, "bpm_queue_jobs", queue="default", state="queued") == 2
    assert value(samples, "bpm_queue_jobs", queue="default", state="failed") == 0
    assert value(samples, "bpm_workers", queue="default") == 1
    assert value(samples, "bpm_sweeper_last_run_timestamp_seconds") > 0
    assert value(samples, "bpm_leases_expired_total") == 0
    assert value(samples, "bpm_redrives_total") == 0
    assert value(samples, "bpm_metrics_source_up", source="redis") == 1


def test_requests_are_counted_by_route_template_not_by_path(client: Client) -> None:
    route = "/api/v1/sagas/<str:saga_id>/"
    labels = {"route": route, "method": "GET", "status": "401"}
    before = scrape(client)

    for _ in range(3):
        assert client.get(f"/api/v1/sagas/{uuid.uuid4()}/").status_code == 401
    client.generic("BREW", "/nowhere/")

    after = scrape(client)
    for name in ("bpm_http_requests_total", "bpm_http_request_duration_seconds_count"):
        assert value(after, name, **labels) - value(before, name, **labels) == 3
    routes = {dict(key)["route"] for name, key in after if name == "bpm_http_requests_total"}
    assert not [route for route in routes if UUID.search(route)], "a path became a label"
    unrouted = {"route": "<unrouted>", "method": "OTHER", "status": "404"}
    assert value(after, "bpm_http_requests_total", **unrouted) >= 1


@registry.handler("test.three_seconds")
def three_seconds(ctx: StepContext) -> dict[str, Any]:
    clock.advance(3)  # the outside world takes three seconds to answer
    return {}


def test_an_attempt_is_timed_from_its_claim_to_its_recorded_outcome(client: Client) -> None:
    declare("slow_one", Step("call", "test.three_seconds"))
    labels = {"definition": "slow_one", "step": "call", "direction": "forward"}
    labels["outcome"] = "succeeded"
    name = "bpm_step_duration_seconds_bucket"
    before = scrape(client)

    start("slow_one")
    drain()

    after = scrape(client)
    for bucket, added in [("2.5", 0), ("5.0", 1)]:
        counted = value(after, name, **labels, le=bucket) - value(before, name, **labels, le=bucket)
        assert counted == added, bucket
