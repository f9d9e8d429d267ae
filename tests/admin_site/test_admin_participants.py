"""The participants' admins: orders, customer accounts, payments, the gateway's ledger and sent
mail, each listed, searchable and shown; only customers are edited, through their service."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from factories import CustomerFactory, NotificationFactory, OrderFactory, PaymentFactory

from notifications.models import Notification
from orders.models import Order, OrderState, RejectionReason
from payments import gateway
from payments import services as payment_services
from payments.models import Customer, GatewayCharge, Payment, PaymentKey

pytestmark = pytest.mark.django_db

# The management form of the customer page's (read-only) payments inline.
NO_PAYMENTS = {"payments-TOTAL_FORMS": "0", "payments-INITIAL_FORMS": "0"}


def a_rejected_order() -> Order:
    return OrderFactory(
        state=OrderState.REJECTED, rejection_reason=RejectionReason.INSUFFICIENT_CREDIT
    )


def a_charge() -> GatewayCharge:
    key = f"charge-{GatewayCharge.objects.count()}"
    gateway.charge(idempotency_key=key, method="credit_card", amount=Decimal("5.00"))
    return GatewayCharge.objects.get(idempotency_key=key)


def a_voided_key() -> PaymentKey:
    key = f"voided-{PaymentKey.objects.count()}"
    payment_services.payment_refund(idempotency_key=key)
    return PaymentKey.objects.get(idempotency_key=key)


def a_correction() -> Notification:
    return NotificationFactory(correction_of=NotificationFactory())


MAKERS: dict[str, Callable[[], object]] = {
    "orders_order": a_rejected_order,
    "payments_customer": lambda: PaymentFactory().customer,
    "payments_payment": PaymentFactory,
    "payments_gatewaycharge": a_charge,
    "payments_paymentkey": a_voided_key,
    "notifications_notification": a_correction,
}


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("who", ["operator", "viewer"])
def test_every_participant_list_and_page_renders(request, name, who):
    client = request.getfixturevalue(who)
    row = MAKERS[name]()
    response = client.get(reverse(f"admin:{name}_changelist"))
    assert response.status_code == 200
    assert row in response.context["cl"].result_list
    assert client.get(reverse(f"admin:{name}_change", args=[row.pk])).status_code == 200


@pytest.mark.parametrize("name", MAKERS)
def test_every_participant_list_costs_the_same_queries_for_3_or_30_rows(viewer, name):
    def rows(count: int) -> None:
        for _ in range(count):
            MAKERS[name]()

    rows(3)
    url = reverse(f"admin:{name}_changelist")
    viewer.get(url)  # the first request fills per-process caches
    with CaptureQueriesContext(connection) as few:
        assert viewer.get(url).status_code == 200
    rows(27)
    with CaptureQueriesContext(connection) as many:
        assert viewer.get(url).status_code == 200
    assert len(many) == len(few), [query["sql"] for query in many]


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("orders_order", Order),
        ("payments_payment", Payment),
        ("payments_gatewaycharge", GatewayCharge),
        ("payments_paymentkey", PaymentKey),
        ("notifications_notification", Notification),
    ],
)
def test_rows_written_by_sagas_are_read_only_even_for_a_superuser(admin_client, name, model):
    row = MAKERS[name]()
    page = admin_client.get(reverse(f"admin:{name}_change", args=[row.pk]))
    assert not page.context["has_change_permission"]
    assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403
    change = admin_client.post(reverse(f"admin:{name}_change", args=[row.pk]), {})
    assert change.status_code == 403
    delete = admin_client.post(reverse(f"admin:{name}_delete", args=[row.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


def test_an_order_links_to_its_saga_in_the_dashboard(viewer):
    order = a_rejected_order()
    dashboard = reverse("dashboard:saga", args=[order.saga_id])
    listing = viewer.get(reverse("admin:orders_order_changelist")).content.decode()
    page = viewer.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert f'href="{dashboard}"' in listing and f'href="{dashboard}"' in page
    assert "insufficient credit" in listing


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"state__exact": "REJECTED"}, True),
        ({"state__exact": "APPROVED"}, False),
        ({"rejection_reason__exact": "INSUFFICIENT_CREDIT"}, True),
        ({"rejection_reason__exact": "PAYMENT_DECLINED"}, False),
        ({"q": "77"}, True),
        ({"q": "78"}, False),
    ],
)
def test_orders_are_filtered_by_state_and_reason_and_found_by_customer(viewer, query, found):
    order = OrderFactory(
        customer_id=77,
        state=OrderState.REJECTED,
        rejection_reason=RejectionReason.INSUFFICIENT_CREDIT,
    )
    listed = viewer.get(reverse("admin:orders_order_changelist"), query).context["cl"].result_list
    assert (order in listed) is found


def test_a_notification_links_to_its_saga_and_shows_its_body(viewer):
    notification = NotificationFactory(body="Your order 12 is confirmed.")
    notification.saga_id = "a1b2c3d4-0000-4000-8000-000000000000"
    notification.save()
    page = viewer.get(reverse("admin:notifications_notification_change", args=[notification.pk]))
    content = page.content.decode()
    assert reverse("dashboard:saga", args=[notification.saga_id]) in content
    assert "Your order 12 is confirmed." in content


@pytest.mark.parametrize("term", ["ada", "ADA@EXAMPLE", "Lovelace"])
def test_customers_are_found_by_name_or_email(viewer, term):
    ada = CustomerFactory(name="Ada Lovelace", email="ada@example.com")
    CustomerFactory(name="Grace Hopper", email="grace@example.com")
    response = viewer.get(reverse("admin:payments_customer_changelist"), {"q": term})
    assert list(response.context["cl"].result_list) == [ada]


def test_the_customer_list_shows_the_available_credit(viewer):
    customer = CustomerFactory(credit_limit=Decimal("100.00"))
    PaymentFactory(customer=customer, amount=Decimal("30.00"))
    page = viewer.get(reverse("admin:payments_customer_change", args=[customer.pk]))
    assert "70.00" in page.content.decode()


def test_an_operator_may_not_open_an_account_but_an_admin_may(operator, admin_client):
    data = {"name": "Ada", "email": "ada@example.com", "credit_limit": "12.345"}
    add = reverse("admin:payments_customer_add")
    assert operator.post(add, data).status_code == 403
    data["credit_limit"] = "12.34"
    response = admin_client.post(add, data)
    customer = Customer.objects.get(email="ada@example.com")
    assert response.status_code == 302
    assert (customer.name, customer.credit_limit) == ("Ada", Decimal("12.34"))


@pytest.mark.parametrize(
    ("limit", "problem"),
    [("-1", "greater than or equal to 0"), ("lots", "Enter a number"), ("", "required")],
)
def test_a_bad_credit_limit_is_refused_and_nothing_changes(admin_client, limit, problem):
    customer = CustomerFactory(credit_limit=Decimal("50.00"))
    data = {"name": customer.name, "email": customer.email, "credit_limit": limit, **NO_PAYMENTS}
    response = admin_client.post(
        reverse("admin:payments_customer_change", args=[customer.pk]), data
    )
    assert problem in str(response.context["adminform"].form.errors["credit_limit"])
    customer.refresh_from_db()
    assert customer.credit_limit == Decimal("50.00")


def test_an_admin_changes_a_credit_limit_and_a_name(admin_client):
    customer = CustomerFactory(name="Ada", credit_limit=Decimal("50.00"))
    data = {"name": "Ada L.", "email": customer.email, "credit_limit": "80", **NO_PAYMENTS}
    url = reverse("admin:payments_customer_change", args=[customer.pk])
    assert admin_client.post(url, data).status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.credit_limit) == ("Ada L.", Decimal("80.00"))
