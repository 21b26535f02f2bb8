"""Reads of alerts shared by the web pages (and, through tracker/events.py, by the apps below)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from notifications.models import SEVERITY_RANK, Alert, AlertStatus


def severity_rank() -> Case:
    """critical 3, high 2, medium 1, info 0: to order alerts most severe first."""
    return Case(
        *(When(severity=code, then=Value(rank)) for code, rank in SEVERITY_RANK.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


def clinic_alerts(
    *,
    clinic_ids: Iterable[int],
    statuses: Iterable[str] = (AlertStatus.OPEN,),
    kinds: Iterable[str] = (),
    severities: Iterable[str] = (),
) -> QuerySet[Alert]:
    """The alerts of the patients of `clinic_ids` in `statuses` (open by default), most severe first, then
    newest. Empty `kinds` / `severities` mean every kind / severity. Patient and clinic come with each row."""
    queryset = (
        Alert.objects.filter(patient__clinic_id__in=list(clinic_ids), status__in=list(statuses))
        .select_related("patient", "patient__clinic", "acknowledged_by")
        .annotate(severity_rank=severity_rank())
        .order_by("-severity_rank", "-opened_at", "-id")
    )
    kinds, severities = list(kinds), list(severities)
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    if severities:
        queryset = queryset.filter(severity__in=severities)
    return queryset


def alerts_opened_since(*, patient_id: int, since: datetime) -> list[Alert]:
    """The patient's unresolved alerts opened, or reopened by new evidence (RULES §10 V-3), at or after
    `since`: what a write that happened then has opened. Most severe first."""
    return list(
        Alert.objects.filter(patient_id=patient_id)
        .exclude(status=AlertStatus.RESOLVED)
        .filter(Q(opened_at__gte=since) | Q(reopened_at__gte=since))
        .annotate(severity_rank=severity_rank())
        .order_by("-severity_rank", "-opened_at", "-id")
    )
