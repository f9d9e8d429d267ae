"""Customer accounts: opening one, its credit limit, and the credit still available."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from factories import CustomerFactory, PaymentFactory

from payments import services
from payments.errors import CustomerNotFound
from payments.models import Customer, PaymentStatus

pytestmark = pytest.mark.django_db


def test_it_opens_an_account_with_a_credit_limit():
    customer = services.customer_create(name=" Ada ", email="ada@example.com", credit_limit="500")
    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Ada", "ada@example.com")
    assert customer.credit_limit == Decimal("500.00")


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"credit_limit": "-0.01"}, "credit_limit", "greater than or equal to 0"),
        ({"credit_limit": "1.005"}, "credit_limit", "decimal places"),
        ({"credit_limit": "lots"}, "credit_limit", "not a decimal number"),
        ({"credit_limit": 10.5}, "credit_limit", "not a float"),
        ({"email": "not-an-address"}, "email", "valid email"),
        ({"name": "   "}, "name", "cannot be blank"),
    ],
)
def test_it_refuses_an_account_saying_what_is_wrong(fields, field, says):
    values = {"name": "Ada", "email": "ada@example.com", "credit_limit": "10", **fields}
    with pytest.raises(ValidationError) as caught:
        services.customer_create(**values)
    assert says in " ".join(caught.value.message_dict[field])
    assert Customer.objects.count() == 0


def test_an_email_address_is_optional_and_many_accounts_may_have_none():
    first = services.customer_create(name="Ada", credit_limit="15")
    second = services.customer_create(name="Grace", email="  ", credit_limit="15")
    assert (first.email, second.email, str(first)) == (None, None, "Ada")


def test_it_refuses_a_second_account_with_the_same_email():
    CustomerFactory(email="ada@example.com")
    with pytest.raises(ValidationError) as caught:
        services.customer_create(name="Ada", email="ada@example.com", credit_limit="1")
    assert "already exists" in " ".join(caught.value.message_dict["email"])


def test_it_reads_a_customer_by_id_and_by_email():
    customer = CustomerFactory(email="grace@example.com")
    assert services.customer_get(customer_id=customer.pk) == customer
    assert services.customer_find(email="Grace@Example.com") == customer
    assert services.customer_find(email="nobody@example.com") is None
    with pytest.raises(CustomerNotFound, match=f"no customer with id {customer.pk + 1}"):
        services.customer_get(customer_id=customer.pk + 1)


def test_available_credit_is_the_limit_less_the_reserved_payments():
    customer = CustomerFactory(credit_limit=Decimal("100.00"))
    PaymentFactory(customer=customer, amount=Decimal("30.00"))
    PaymentFactory(customer=customer, amount=Decimal("12.50"))
    PaymentFactory(customer=customer, amount=Decimal("40.00"), status=PaymentStatus.REFUNDED)
    PaymentFactory(amount=Decimal("99.00"))  # someone else's
    assert services.customer_available_credit(customer_id=customer.pk) == Decimal("57.50")


def test_it_changes_a_credit_limit_and_refuses_a_negative_one():
    customer = CustomerFactory(credit_limit=Decimal("10.00"))
    services.customer_set_credit_limit(customer_id=customer.pk, credit_limit="25.5")
    customer.refresh_from_db()
    assert customer.credit_limit == Decimal("25.50")
    with pytest.raises(ValidationError):
        services.customer_set_credit_limit(customer_id=customer.pk, credit_limit="-1")
    customer.refresh_from_db()
    assert customer.credit_limit == Decimal("25.50")
