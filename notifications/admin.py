"""Django admin for staff alerts: view, history, and acknowledging through the alert service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from notifications.alerts import alert_acknowledge
from notifications.models import Alert, AlertStatus
from tracker.admin import ReadOnlyHistoryAdmin


@admin.register(Alert)
class AlertAdmin(ReadOnlyHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ("opened_at", "patient", "kind", "rule_id", "severity", "status", "acknowledged_by", "escalated_at")
    list_select_related = ("patient__clinic", "acknowledged_by")
    list_filter = ("status", "severity", "kind", "patient__clinic")
    search_fields = ("patient__family_name", "patient__given_name", "patient__mrn", "message")
    date_hierarchy = "opened_at"
    actions = ("acknowledge",)

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        # Acknowledging is the one change allowed here (by users with the change permission);
        # every field stays read-only, so the form itself cannot alter an alert.
        return bool(request.user.has_perm("notifications.change_alert"))

    def get_readonly_fields(self, request: HttpRequest, obj: Alert | None = None) -> list[str]:
        return [f.name for f in Alert._meta.fields]

    @admin.action(description="Acknowledge selected alerts", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        # Through the service, so the acknowledgement is recorded exactly as in the app.
        count = 0
        for alert in queryset.select_related("patient").exclude(status=AlertStatus.RESOLVED):
            alert_acknowledge(alert=alert, user=request.user, note="Acknowledged in the admin")
            count += 1
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)
from notifications import delivery_admin  # noqa: E402, F401  (registers the delivery log)
