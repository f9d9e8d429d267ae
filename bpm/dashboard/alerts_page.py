"""The alert rules' pages: every rule and the notices sent; operators add, change and delete.

Viewers see the rules and the log read-only; the signing secret of a webhook rule is shown once,
to the operator who made or rotated it, and never on a page again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from bpm import alert_delivery, alert_rules
from bpm.dashboard.access import dashboard_view, page_context, refused
from bpm.errors import PermissionDenied
from bpm.models import AlertDelivery, AlertNotice, AlertRule, SagaDefinition, StuckReason

VIEW_PERMISSION = "bpm.view_alertrule"
NOTICES_SHOWN = 50
SECRET_KEY = "bpm-alert-secret"


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    definition_name = forms.ChoiceField(label="Definition", required=False)
    stuck_reason = forms.ChoiceField(
        label="Stuck reason", required=False, choices=[("", "any reason"), *StuckReason.choices]
    )
    threshold = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        initial=1,
        help_text="Fire when at least this many matching sagas are stuck (1: any).",
    )
    window_minutes = forms.IntegerField(
        label="Within minutes",
        required=False,
        min_value=1,
        max_value=alert_rules.MAX_WINDOW_MINUTES,
        help_text="Count only sagas that got stuck within this many minutes; blank: all stuck.",
    )
    channel = forms.ChoiceField(choices=AlertRule.Channel.choices, widget=forms.RadioSelect)
    email_to = forms.CharField(
        label="Email to", required=False, max_length=1000, help_text="Addresses, comma-separated."
    )
    webhook_url = forms.CharField(
        label="Webhook URL",
        required=False,
        max_length=500,
        help_text="Only hosts listed in BPM_HTTP_ALLOWED_HOSTS; redirects are not followed.",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args: Any, rule: AlertRule | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule
        names = SagaDefinition.objects.order_by("name").values_list("name", flat=True).distinct()
        self.fields["definition_name"].choices = [  # type: ignore[attr-defined]
            ("", "any definition"),
            *((name, name) for name in names),
        ]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        taken = AlertRule.objects.filter(name=name)
        if self.rule is not None:
            taken = taken.exclude(pk=self.rule.pk)
        if taken.exists():
            raise forms.ValidationError("Another rule has this name.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            for field, problems in alert_rules.validate(data).items():
                for problem in problems:
                    self.add_error(field, problem)
        return data


def _guard(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise HttpForbidden("you may not view alert rules")


def _refuse(request: HttpRequest, reason: str, rule_id: int | None = None) -> HttpResponse:
    back = reverse("dashboard:alert", args=[rule_id]) if rule_id else reverse("dashboard:alerts")
    return refused(request, reason, back=back)


@dashboard_view
@require_http_methods(["GET", "POST"])
def alert_list(request: HttpRequest) -> HttpResponse:
    """List the rules and the latest notices; an operator's POST adds a rule."""
    _guard(request)
    form = AlertRuleForm()
    status = 200
    if request.method == "POST":
        form = AlertRuleForm(request.POST)
        if not alert_rules.may_manage(request.user, "add"):
            return _refuse(request, _refusal(request, "add"))
        if form.is_valid():
            rule = alert_rules.alert_rule_create(user=request.user, values=form.cleaned_data)
            if rule.secret:
                request.session[SECRET_KEY] = {"rule": rule.pk, "secret": rule.secret}
            messages.success(request, f"The alert rule “{rule.name}” was added.")
            return HttpResponseRedirect(reverse("dashboard:alert", args=[rule.pk]))
        status = 400
    context = page_context(
        request,
        "Alert rules",
        tab="alerts",
        rules=AlertRule.objects.all(),
        notices=_notices(AlertNotice.objects.all()),
        form=form,
        may_add=alert_rules.may_manage(request.user, "add"),
    )
    return render(request, "dashboard/alerts.html", context, status=status)


@dashboard_view
@require_http_methods(["GET", "POST"])
def alert_detail(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Show a rule, its notices and their attempts; an operator's POST changes it."""
    _guard(request)
    rule = get_object_or_404(AlertRule, pk=rule_id)
    may_change = alert_rules.may_manage(request.user, "change")
    form = AlertRuleForm(initial=_initial(rule), rule=rule) if may_change else None
    status = 200
    if request.method == "POST":
        if not may_change:
            return _refuse(request, _refusal(request, "change"), rule.pk)
        form = AlertRuleForm(request.POST, rule=rule)
        if form.is_valid():
            alert_rules.alert_rule_update(
                user=request.user, rule_id=rule.pk, values=form.cleaned_data
            )
            messages.success(request, f"The alert rule “{form.cleaned_data['name']}” was saved.")
            return HttpResponseRedirect(reverse("dashboard:alert", args=[rule.pk]))
        status = 400
    shown = request.session.pop(SECRET_KEY, None)
    secret = shown["secret"] if shown and shown.get("rule") == rule.pk and may_change else None
    context = page_context(
        request,
        f"Alert rule: {rule.name}",
        tab="alerts",
        rule=rule,
        form=form,
        secret=secret,
        signature_header=alert_delivery.SIGNATURE_HEADER,
        timestamp_header=alert_delivery.TIMESTAMP_HEADER,
        notices=_notices(AlertNotice.objects.filter(rule=rule)),
        may_change=may_change,
        may_delete=alert_rules.may_manage(request.user, "delete"),
    )
    return render(request, "dashboard/alert.html", context, status=status)


@dashboard_view
@require_POST
def alert_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Delete a rule (operators); its notices stay in the log."""
    _guard(request)
    rule = get_object_or_404(AlertRule, pk=rule_id)
    try:
        alert_rules.alert_rule_delete(user=request.user, rule_id=rule.pk)
    except PermissionDenied as error:
        return _refuse(request, str(error), rule.pk)
    messages.success(request, f"The alert rule “{rule.name}” was deleted; its log stays.")
    return HttpResponseRedirect(reverse("dashboard:alerts"))


@dashboard_view
@require_POST
def alert_rotate(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Give a webhook rule a new signing secret, shown once on the rule's page (operators)."""
    _guard(request)
    rule = get_object_or_404(AlertRule, pk=rule_id)
    try:
        secret = alert_rules.alert_rule_rotate_secret(user=request.user, rule_id=rule.pk)
    except PermissionDenied as error:
        return _refuse(request, str(error), rule.pk)
    request.session[SECRET_KEY] = {"rule": rule.pk, "secret": secret}
    messages.success(request, "A new signing secret was made; the old one no longer verifies.")
    return HttpResponseRedirect(reverse("dashboard:alert", args=[rule.pk]))


def _refusal(request: HttpRequest, change: str) -> str:
    return (
        f"{request.user.get_username()} may not {change} alert rules: that needs the "
        f"bpm.{change}_alertrule permission, which the operators group has"
    )


def _initial(rule: AlertRule) -> dict[str, Any]:
    return {key: getattr(rule, key) for key in alert_rules.FIELDS}


def _notices(notices: Any) -> list[AlertNotice]:
    return list(
        notices.prefetch_related(
            Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("attempt", "id"))
        ).order_by("-created_at", "-id")[:NOTICES_SHOWN]
    )
