"""The OpenAPI schema is static and generates a clean client with openapi-python-client.

The end-to-end test generates the client offline from the schema a live server serves, imports
it, and with it opens a customer account, places an order and reads it back from that server.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import Processes, answers, free_port, poll
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import declare

from bpm.declarations import StepDeclaration

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "bpm_generated_client"


def served_schema() -> dict[str, Any]:
    return APIClient().get("/api/v1/schema/", {"format": "json"}).json()


@pytest.mark.django_db
def test_the_schema_does_not_change_with_the_definitions_in_the_database():
    before = served_schema()
    declare("composed_meanwhile", StepDeclaration("a", "test.remote"))
    assert served_schema() == before


def test_check_and_schema_generation_need_no_database(tmp_path: Path):
    env = {
        **os.environ,
        # A server nobody listens on: any query would fail at once.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/no_such_database",
    }
    for command in (["check"], ["spectacular", "--file", str(tmp_path / "schema.yaml")]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "openapi: 3.1.0" in (tmp_path / "schema.yaml").read_text()


def generate(schema: dict[str, Any], into: Path) -> Path:
    """Generate the client package with openapi-python-client, offline, failing on any warning."""
    (into / "schema.json").write_text(json.dumps(schema))
    config = into / "config.yaml"
    # No post-hooks: the generator would otherwise run ruff on its output.
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(into / "schema.json"),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
            "--fail-on-warning",
        ],
        cwd=into,
        capture_output=True,
        text=True,
        timeout=300,
        # No proxy, no index: nothing may be downloaded.
        env={**os.environ, "PIP_NO_INDEX": "1", "NO_PROXY": "*"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return into


@pytest.fixture
def live_server_url(tmp_path: Path) -> Iterator[str]:
    """Start `manage.py runserver` on the test database; return its URL once it answers."""
    processes = Processes(tmp_path)
    port = free_port()
    server = processes.start("web", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks")
    url = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: answers(f"{url}/api/v1/schema/", server), timeout=60, message="runserver")
        yield url
    finally:
        processes.stop_all()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_generated_client_opens_an_account_places_an_order_and_reads_it_back(
    live_server_url, tmp_path
):
    with urllib.request.urlopen(f"{live_server_url}/api/v1/schema/?format=json") as response:
        schema = json.load(response)
    assert schema == served_schema()
    generate(schema, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module(f"{PACKAGE}.client")
        customers_create = importlib.import_module(f"{PACKAGE}.api.customers.customers_create")
        orders_create = importlib.import_module(f"{PACKAGE}.api.orders.orders_create")
        orders_retrieve = importlib.import_module(f"{PACKAGE}.api.orders.orders_retrieve")
        models = importlib.import_module(f"{PACKAGE}.models")
        # Every operation is generated, the operator actions included.
        for action in ("retry", "skip", "compensate", "abort"):
            importlib.import_module(f"{PACKAGE}.api.sagas.sagas_{action}_create")

        user = UserFactory(username="shop", groups=["clients"], is_staff=False)
        token = Token.objects.create(user=user).key
        client = client_module.AuthenticatedClient(
            base_url=live_server_url, token=token, prefix="Token"
        )
        customer = customers_create.sync(
            client=client,
            body=models.CustomerCreateRequest(name="Ada", credit_limit="100.00"),
        )
        assert isinstance(customer, models.Customer), customer
        assert customer.available_credit == "100.00"
        placed = orders_create.sync(
            client=client,
            body=models.OrderCreateRequest(
                customer_id=customer.id,
                products=[1, 2],
                total="12.50",
                payment_method="credit_card",
            ),
        )
        assert isinstance(placed, models.Order), placed
        read = orders_retrieve.sync(client=client, order_id=placed.id)
        assert isinstance(read, models.Order), read
        assert (read.id, read.customer_id, read.products, read.total) == (
            placed.id,
            customer.id,
            [1, 2],
            "12.50",
        )
        assert read.state.value == "PENDING"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]
