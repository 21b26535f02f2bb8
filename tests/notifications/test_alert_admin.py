"""The Django admin's "Acknowledge selected alerts" action (notifications/admin.py): it acknowledges open
non-critical alerts through the staff service and leaves critical ones alone, since each needs a note of
what was done and acknowledging one that shows "target met" closes it (RULES §10 V-2)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from notifications.models import AlertKind, AlertStatus, Severity
from tests.factories import AlertFactory

pytestmark = pytest.mark.django_db


def test_the_bulk_action_skips_critical_alerts_and_says_where_to_acknowledge_them(
    patient: Any, admin_client: Any
) -> None:
    critical = AlertFactory(
        patient=patient,
        kind=AlertKind.PLATELETS_CRITICAL,
        severity=Severity.CRITICAL,
        target_met_at=timezone.now(),
        target_met_evidence={"analyte": "platelets", "value": "180", "unit": "x10^9/L"},
    )
    medium = AlertFactory(patient=patient, kind=AlertKind.LDH_NOT_NORMALIZED, severity=Severity.MEDIUM)

    response = admin_client.post(
        "/admin/notifications/alert/",
        {"action": "acknowledge", "_selected_action": [critical.pk, medium.pk]},
    )

    assert response.status_code == 302
    critical.refresh_from_db()
    assert critical.status == AlertStatus.OPEN
    assert critical.acknowledged_by is None
    assert critical.acknowledged_at is None
    assert critical.acknowledgement_note == ""
    assert critical.resolved_at is None
    medium.refresh_from_db()
    assert medium.status == AlertStatus.ACKNOWLEDGED
    assert medium.acknowledged_by is not None and medium.acknowledged_by.is_superuser
    assert medium.acknowledgement_note == "Acknowledged in the admin"
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said[0] == "1 alert(s) acknowledged."
    assert said[1].startswith("1 critical alert(s) skipped: a critical alert is acknowledged one at a time")
    assert "/alerts/" in said[1]
    assert len(said) == 2


def test_the_bulk_action_leaves_alerts_already_acknowledged_or_resolved(patient: Any, admin_client: Any) -> None:
    acknowledged = AlertFactory(patient=patient, status=AlertStatus.ACKNOWLEDGED, acknowledgement_note="Rebooked")
    resolved = AlertFactory(patient=patient, kind=AlertKind.LDH_NOT_NORMALIZED, status=AlertStatus.RESOLVED)

    response = admin_client.post(
        "/admin/notifications/alert/",
        {"action": "acknowledge", "_selected_action": [acknowledged.pk, resolved.pk]},
    )

    acknowledged.refresh_from_db()
    assert (acknowledged.status, acknowledged.acknowledgement_note) == (AlertStatus.ACKNOWLEDGED, "Rebooked")
    resolved.refresh_from_db()
    assert resolved.status == AlertStatus.RESOLVED and resolved.acknowledged_by is None
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == ["0 alert(s) acknowledged.", "2 alert(s) skipped: already acknowledged or resolved."]
