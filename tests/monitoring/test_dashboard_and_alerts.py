"""docs/grafana-dashboard.json and docs/alerts.yml: well formed, and every metric they use is one
that /metrics exports (and every metric /metrics exports has a panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from scraping import names, scrape
from test_readyz import register_worker
from testkit import drain, three_steps

from bpm import services

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC = re.compile(r"\bbpm_[a-z0-9_]+\b")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def dashboard() -> dict:
    return json.loads((DOCS / "grafana-dashboard.json").read_text())


def rules() -> list[dict]:
    groups = yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = [panel for panel in dashboard()["panels"] if panel["type"] != "row"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def balanced(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.fixture
def exported(client: Client, the_world) -> set[str]:
    """Return every metric name /metrics exports once each kind of event has happened."""
    three_steps()
    services.saga_start(definition="three_compensatable_remote", input={}, actor="test")
    drain()
    the_world.will("a", "fault", "fault", "fault")
    the_world.will("a", "fault", "fault", "fault", direction="COMPENSATION")
    services.saga_start(definition="three_compensatable_remote", input={}, actor="test")
    drain()
    register_worker("w1")
    call_command("sweep", stdout=open("/dev/null", "w"))  # noqa: SIM115
    client.get("/api/v1/definitions/")
    return {name for name in names(scrape(client)) if name.startswith("bpm_")}


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_datasource_variable() -> None:
    board = dashboard()
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
    assert all(balanced(expr) for expr in dashboard_expressions())


def test_the_dashboard_uses_only_exported_metrics_and_has_a_panel_for_each(
    exported: set[str],
) -> None:
    used = {name for expr in dashboard_expressions() for name in METRIC.findall(expr)}

    assert used - exported == set()
    assert {family(name) for name in exported} - {family(name) for name in used} == set()


def test_the_alert_rules_are_prometheus_rules_for_the_four_conditions() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}

    assert {
        "BpmSagasStuck",
        "BpmNoWorkerOnQueue",
        "BpmSweeperSilent",
        "BpmStepFailureRateHigh",
    } <= set(by_name)
    for rule in by_name.values():
        assert rule["expr"].strip() and balanced(rule["expr"])
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_the_alert_rules_use_only_exported_metrics(exported: set[str]) -> None:
    used = {name for rule in rules() for name in METRIC.findall(rule["expr"])}

    assert used
    assert used - exported == set()
