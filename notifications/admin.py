"""Django admin of the notifications app.

- Alerts: view, history, and acknowledging non-critical open alerts in bulk through the staff service (a
  critical alert is acknowledged one at a time with a note, on the alerts page or the API).
- The delivery log: read-only, recipients masked, every attempt shown; failed rows can be retried.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from notifications.alerts import alert_acknowledge_by_staff
from notifications.models import Alert, AlertStatus, Delivery, DeliveryAttempt, DeliveryStatus, Severity
from notifications.serializers import mask_recipient
from tracker.admin import ReadOnlyHistoryAdmin, admin_clinic_ids
from tracker.errors import ServiceError


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
        # Through the staff service, so the acknowledgement is checked and recorded exactly as in the app and
        # the API. Critical alerts are left alone: each needs a note of what was done, and acknowledging one
        # that shows "target met" closes it (RULES §10 V-2), so no canned note may do it in bulk. Alerts
        # already acknowledged or resolved are left too (the API refuses them: 409).
        acknowledged = critical = done_before = 0
        for alert in queryset.select_related("patient"):
            if alert.severity == Severity.CRITICAL:
                critical += 1
            elif alert.status != AlertStatus.OPEN:
                done_before += 1
            else:
                try:
                    alert_acknowledge_by_staff(alert=alert, user=request.user, note="Acknowledged in the admin")
                except ServiceError:  # acknowledged or resolved since the list was shown
                    done_before += 1
                else:
                    acknowledged += 1
        self.message_user(request, f"{acknowledged} alert(s) acknowledged.", messages.SUCCESS)
        if critical:
            self.message_user(
                request,
                f"{critical} critical alert(s) skipped: a critical alert is acknowledged one at a time with a note "
                f"of what was done, in its card on the alerts page ({reverse('alerts')}) or the patient's page, "
                "or by POST /api/alerts/{id}/acknowledge/ (RULES §3.6, §10 V-2).",
                messages.WARNING,
            )
        if done_before:
            self.message_user(
                request, f"{done_before} alert(s) skipped: already acknowledged or resolved.", messages.WARNING
            )


class DeliveryAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "attempted_at", "outcome", "error", "provider_id", "worker")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("due_at", "purpose", "channel", "recipient", "patient", "status", "attempts", "sent_at")
    list_filter = ("status", "channel", "purpose")
    search_fields = ("idempotency_key", "patient__mrn", "patient__family_name")
    date_hierarchy = "due_at"
    list_select_related = ("patient", "user")
    inlines = (DeliveryAttemptInline,)
    exclude = ("address",)
    actions = ("retry_now",)

    @admin.display(description="recipient")
    def recipient(self, obj: Delivery) -> str:
        return mask_recipient(obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Delivery | None = None) -> list[str]:
        return ["recipient", *(f.name for f in Delivery._meta.fields if f.name != "address")]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        queryset = super().get_queryset(request)
        clinics = admin_clinic_ids(request)
        if clinics is None:
            return queryset
        return queryset.filter(
            Q(patient__clinic__in=clinics) | Q(alert__patient__clinic__in=clinics) | Q(user=request.user)
        ).distinct()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("notifications.change_delivery"))

    @admin.action(description="Retry selected failed deliveries now", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = queryset.filter(status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING, due_at=timezone.now(), updated_at=timezone.now()
        )
        self.message_user(request, f"{count} deliver(ies) queued again; the outbox sweep sends them.", messages.SUCCESS)
