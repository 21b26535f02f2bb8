"""What notifications provide to the apps below it (tracker/events.py), which cannot import it."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from notifications.models import SEVERITY_RANK, Alert, AlertStatus, Severity
from tracker import events


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
