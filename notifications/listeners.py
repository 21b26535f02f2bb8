"""What notifications answers the apps below it through tracker/events.py (they cannot import it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count

from notifications import selectors
from notifications.models import SEVERITY_RANK, Alert, AlertStatus, Severity
from tracker import events


@events.provide("patient.alerts_opened_since")
def alerts_opened_since(*, patient_id: int, since: datetime) -> list[dict[str, Any]]:
    """The patient's alerts opened or reopened since `since` (e.g. by the lab results a page just stored), as
    plain values: {id, kind, kind_display, severity, severity_display, status}."""
    return [
        {
            "id": alert.pk,
            "kind": alert.kind,
            "kind_display": alert.get_kind_display(),
            "severity": alert.severity,
            "severity_display": alert.get_severity_display(),
            "status": alert.status,
        }
        for alert in selectors.alerts_opened_since(patient_id=patient_id, since=since)
    ]


@events.provide("alerts.needing_action")
def alerts_needing_action(*, clinic_ids: Iterable[int]) -> list[tuple[str, str, int]]:
    """The open (unacknowledged) alerts of the clinics `clinic_ids`, counted by severity, most severe first:
    (severity, its label, count). One query; the worklist shows it with a link to /alerts/."""
    rows = (
        Alert.objects.filter(patient__clinic_id__in=list(clinic_ids), status=AlertStatus.OPEN)
        .values_list("severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {severity: n for severity, n in rows}
    return [
        (severity, str(Severity(severity).label), counts[severity])
        for severity in sorted(counts, key=lambda s: -SEVERITY_RANK.get(s, 0))
    ]
