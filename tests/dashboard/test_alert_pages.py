"""The alert pages per role: operators manage rules, viewers read them, clients never see them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from factories import UserFactory

from bpm.models import AlertNotice, AlertRule

pytestmark = pytest.mark.django_db

ALERTS = reverse("dashboard:alerts")


@pytest.fixture(autouse=True)
def allowed_hosts(settings):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(username="olga", groups=["operators"]))
    return client


@pytest.fixture
def rule() -> AlertRule:
    return AlertRule.objects.create(
        name="any stuck",
        channel=AlertRule.Channel.WEBHOOK,
        webhook_url="http://127.0.0.1:9/hook",
        secret="the-secret-value",
    )


def webhook_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "payments stuck",
        "definition_name": "",
        "stuck_reason": "RETRIES_EXHAUSTED",
        "threshold": "3",
        "window_minutes": "15",
        "channel": "WEBHOOK",
        "email_to": "",
        "webhook_url": "http://127.0.0.1:8099/hook",
        "is_active": "on",
    }
    return {**form, **changes}


def pages(rule: AlertRule) -> list[str]:
    return [ALERTS, reverse("dashboard:alert", args=[rule.pk])]


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, rule):
    for page in pages(rule):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert client.post(ALERTS, webhook_form()).status_code == 302
    assert AlertRule.objects.count() == 1


def test_a_client_never_sees_alert_rules(client, rule):
    client.force_login(UserFactory(groups=["clients"]))
    for page in pages(rule):
        assert client.get(page).status_code == 403
    assert client.post(ALERTS, webhook_form()).status_code == 403
    assert client.post(reverse("dashboard:alert_delete", args=[rule.pk])).status_code == 403
    assert AlertRule.objects.count() == 1


def test_a_viewer_reads_rules_and_the_log_but_changes_nothing(viewer, rule):
    AlertNotice.objects.create(
        rule=rule,
        rule_name=rule.name,
        kind="FIRED",
        episode_started_at=rule.created_at,
        channel=rule.channel,
        payload={"stuck": 4},
        status="SENT",
    )
    listing = viewer.get(ALERTS)
    assert listing.status_code == 200
    assert "any stuck" in listing.content.decode()
    assert "Only operators" in listing.content.decode()
    assert b"Add rule" not in listing.content
    detail = viewer.get(reverse("dashboard:alert", args=[rule.pk]))
    assert detail.status_code == 200
    assert "Read-only" in detail.content.decode()
    assert "the-secret-value" not in detail.content.decode()
    assert b"Save rule" not in detail.content
    assert b"Rotate signing secret" not in detail.content
    refusal = viewer.post(ALERTS, webhook_form())
    assert refusal.status_code == 403
    # A page of the dashboard that says why, not a bare "403 Forbidden".
    assert (
        "vera may not add alert rules: that needs the bpm.add_alertrule" in refusal.content.decode()
    )
    assert (
        viewer.post(reverse("dashboard:alert", args=[rule.pk]), webhook_form()).status_code == 403
    )
    assert viewer.post(reverse("dashboard:alert_delete", args=[rule.pk])).status_code == 403
    assert viewer.post(reverse("dashboard:alert_rotate", args=[rule.pk])).status_code == 403
    assert AlertRule.objects.get().secret == "the-secret-value"


def test_an_operator_adds_a_webhook_rule_and_sees_its_secret_once(operator):
    response = operator.post(ALERTS, webhook_form())
    rule = AlertRule.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:alert", args=[rule.pk])
    assert (rule.threshold, rule.window_minutes, rule.stuck_reason) == (3, 15, "RETRIES_EXHAUSTED")
    assert len(rule.secret) == 64
    first = operator.get(response["Location"]).content.decode()
    assert rule.secret in first
    assert rule.secret not in operator.get(response["Location"]).content.decode()


def test_an_operator_is_told_why_a_webhook_url_is_refused(operator):
    for url, says in [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not listed in BPM_HTTP"),
        ("file:///etc/passwd", "(only http and https)"),
        ("https://evil.example.net/x", "evil.example.net&#x27; (port 443) is not listed"),
        ("", "A webhook needs its URL."),
    ]:
        response = operator.post(ALERTS, webhook_form(webhook_url=url))
        assert response.status_code == 400
        assert says in response.content.decode()
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"channel": "EMAIL", "email_to": ""}, "Name at least one address"),
        ({"channel": "EMAIL", "email_to": "ops@example.com, not-an-address"}, "is not an email"),
        ({"threshold": "0"}, "greater than or equal to 1"),
        ({"window_minutes": "99999999"}, "less than or equal to 10080"),
        ({"channel": "SMS"}, "Select a valid choice"),
        ({"stuck_reason": "BORED"}, "Select a valid choice"),
        ({"definition_name": "no_such_definition"}, "Select a valid choice"),
    ],
)
def test_hostile_rule_input_is_answered_400_with_the_reason(operator, changes, says):
    response = operator.post(ALERTS, webhook_form(**changes))
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not AlertRule.objects.exists()


def test_rule_names_are_unique(operator, rule):
    response = operator.post(ALERTS, webhook_form(name="any stuck"))
    assert response.status_code == 400
    assert "Another rule has this name." in response.content.decode()


def test_an_operator_changes_rotates_and_deletes_a_rule_and_its_log_stays(operator, rule):
    page = reverse("dashboard:alert", args=[rule.pk])
    changed = operator.post(page, webhook_form(name="any stuck", threshold="5"))
    assert changed.status_code == 302
    assert AlertRule.objects.get().threshold == 5
    assert operator.post(reverse("dashboard:alert_rotate", args=[rule.pk])).status_code == 302
    rotated = AlertRule.objects.get().secret
    assert rotated != "the-secret-value"
    assert rotated in operator.get(page).content.decode()
    AlertNotice.objects.create(
        rule=rule,
        rule_name=rule.name,
        kind="FIRED",
        episode_started_at=rule.created_at,
        channel=rule.channel,
    )
    assert operator.post(reverse("dashboard:alert_delete", args=[rule.pk])).status_code == 302
    assert not AlertRule.objects.exists()
    assert "any stuck (deleted)" in operator.get(ALERTS).content.decode()


def test_get_is_refused_on_the_delete_and_rotate_urls(operator, rule):
    assert operator.get(reverse("dashboard:alert_delete", args=[rule.pk])).status_code == 405
    assert operator.get(reverse("dashboard:alert_rotate", args=[rule.pk])).status_code == 405


def test_an_unknown_rule_is_a_404(operator):
    assert operator.get(reverse("dashboard:alert", args=[999999])).status_code == 404
