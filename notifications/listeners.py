"""What notifications answers the apps below it through tracker/events.py (they cannot import it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notifications import selectors
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
