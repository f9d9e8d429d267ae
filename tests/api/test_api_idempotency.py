"""Idempotency-Key on the POSTs that create: replay, mismatch, in progress, scope and expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.response import Response

from bpm import clock
from bpm.api import idempotency
from bpm.api.errors import IdempotencyKeyInUse
from bpm.api.idempotency import fingerprint
from bpm.api.models import IdempotencyRecord, IdempotencyState
from bpm.models import SagaInstance
from orders.models import Order
from payments.models import Customer

pytestmark = pytest.mark.django_db

ORDER = {"customer_id": 1, "products": [1, 2], "total": "12.34", "payment_method": "credit_card"}
KEY = "order-2026-0001"


def place(api, body=ORDER, key=KEY):
    return api.post("/api/v1/orders/", body, HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_gets_the_first_response_and_creates_nothing_more(shop):
    first = place(shop)
    again = place(shop)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Order.objects.count() == SagaInstance.objects.count() == 1


def test_every_creating_post_honours_the_key(shop):
    customer = {"name": "Ada", "credit_limit": "5.00"}
    saga = {"definition": "place_order", "input": ORDER}
    for url, body in (("/api/v1/customers/", customer), ("/api/v1/sagas/", saga)):
        first = shop.post(url, body, HTTP_IDEMPOTENCY_KEY=f"k-{url}")
        again = shop.post(url, body, HTTP_IDEMPOTENCY_KEY=f"k-{url}")
        assert (first.status_code, again.json()) == (201, first.json())
    assert Customer.objects.count() == SagaInstance.objects.count() == 1


def test_the_same_key_with_a_different_body_is_a_422(shop):
    place(shop)
    response = place(shop, {**ORDER, "total": "99.00"})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_a_422(shop):
    place(shop)
    response = shop.post(
        "/api/v1/customers/", {"name": "A", "credit_limit": "1"}, HTTP_IDEMPOTENCY_KEY=KEY
    )
    assert response.status_code == 422


def test_the_same_body_in_another_key_order_is_the_same_request(shop):
    place(shop)
    reordered = dict(reversed(list(ORDER.items())))
    assert place(shop, reordered).status_code == 201
    assert Order.objects.count() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs row locks: on SQLite a repeat waits for the first request's transaction",
)
@pytest.mark.django_db(transaction=True)
def test_a_repeat_while_the_first_is_in_progress_is_a_409(shop):
    claim_left(shop.user)
    running, done = threading.Event(), threading.Event()

    def first_request_working() -> None:
        # What a running request does with its claim: hold the row's lock while it works.
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.select_for_update().get()
                running.set()
                done.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=first_request_working)
    holder.start()
    try:
        assert running.wait(timeout=30)
        response = place(shop)
    finally:
        done.set()
        holder.join()
    assert (response.status_code, response.json()["code"]) == (409, "idempotency_key_in_use")
    assert not Order.objects.exists()


def test_a_claim_left_by_a_request_that_died_is_taken_over_at_once(shop):
    # No transaction holds the claim's row: its request died, and its work rolled back.
    claim_left(shop.user)
    assert place(shop).status_code == 201
    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.get().state == IdempotencyState.DONE


def test_keys_belong_to_their_user(shop, as_role):
    other_shop = as_role("clients", username="other-shop")
    assert place(shop).status_code == 201
    assert place(other_shop).status_code == 201
    assert Order.objects.count() == 2


def test_a_key_expires_after_24_hours_and_expired_keys_are_purged(shop, as_role):
    place(shop)
    place(as_role("clients", username="other-shop"), key="another")
    clock.advance(24 * 3600 + 1)
    second = place(shop)
    assert (second.status_code, second.has_header("Idempotent-Replayed")) == (201, False)
    assert Order.objects.count() == 3
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == [KEY]


@override_settings(BPM_API_IDEMPOTENCY_EXPIRY=60)
def test_the_expiry_is_configurable(shop):
    place(shop)
    clock.advance(61)
    place(shop)
    assert Order.objects.count() == 2


def test_a_refused_request_releases_its_key_so_the_client_may_fix_it(shop):
    bad = place(shop, {**ORDER, "total": "0"})
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    # The first attempt got only an error, so a corrected body may use the key.
    assert place(shop, {**ORDER, "total": "0"}).status_code == 400
    assert place(shop).status_code == 201


def test_a_failure_inside_the_work_releases_the_key(shop):
    unknown = {"definition": "nope", "input": {}}
    response = shop.post("/api/v1/sagas/", unknown, HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    fixed = {"definition": "place_order", "input": ORDER}
    assert shop.post("/api/v1/sagas/", fixed, HTTP_IDEMPOTENCY_KEY="k").status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_key_is_a_400(shop, key):
    response = shop.post("/api/v1/orders/", ORDER, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["Idempotency-Key"]
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_create_exactly_one_order_and_one_saga(shop):
    racers = 8
    barrier = threading.Barrier(racers)
    statuses: list[int] = []
    bodies: list[dict] = []

    def race() -> None:
        try:
            barrier.wait()
            response = place(shop)
            statuses.append(response.status_code)
            if response.status_code == 201:
                bodies.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Order.objects.count() == 1
    assert SagaInstance.objects.count() == 1
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert all(body == bodies[0] for body in bodies)
    # Once the first has finished, every repeat is a replay.
    assert place(shop).json() == bodies[0]


def claim_left(user) -> None:
    """Leave the claim a request placing ORDER under KEY makes before it runs."""
    IdempotencyRecord.objects.create(
        user=user,
        key=KEY,
        fingerprint=fingerprint("POST", "/api/v1/orders/", ORDER),
        expires_at=clock.now() + timedelta(days=1),
    )


def test_a_request_whose_claim_was_taken_over_can_neither_complete_nor_release_it(shop):
    claim_left(shop.user)
    stale = IdempotencyRecord.objects.get()
    assert place(shop).status_code == 201  # took the claim over, ran, stored its response
    # The first request comes back: its response is refused (so its transaction, holding
    # its work, rolls back), and it cannot release the key it no longer holds.
    with pytest.raises(IdempotencyKeyInUse):
        idempotency._complete(stale, Response({"id": 0}, status=201))
    idempotency._release(stale)
    assert IdempotencyRecord.objects.get().state == IdempotencyState.DONE
    assert place(shop).has_header("Idempotent-Replayed")
