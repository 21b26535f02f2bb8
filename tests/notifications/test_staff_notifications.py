"""Staff notifications (notifications/staff.py): HIGH and CRITICAL alerts reach the
clinic's staff at once, MEDIUM ones in the next morning's digest, and unacknowledged HIGH/CRITICAL ones
escalate to the clinic lead once (RULES §3.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from notifications.alerts import alert_acknowledge, alert_raise
from notifications.models import Alert, Delivery
from patients.models import Clinic, Patient, Role
from tests.factories import ClinicFactory, PatientFactory, UserFactory, staff_user
from tracker import sweeps

pytestmark = pytest.mark.django_db

OPENED = datetime(2027, 1, 4, 12, tzinfo=UTC)  # Monday noon (GMT = London time)


def raise_alert(patient: Patient, severity: str, kind: str = "platelets_critical", at: datetime = OPENED) -> Alert:
    alert, _created = alert_raise(
        patient=patient,
        kind=kind,
        severity=severity,
        message="Platelets 18 x10^9/L on 2027-01-04 (A-P3).",
        action_text="Review today.",
        rule_id="A-P3",
        at=at,
    )
    return alert


def staff_sweep(at: datetime) -> dict[str, int]:
    return sweeps.run("staff", at)


def sent(purpose: str) -> list[tuple[str, str]]:
    return sorted((d.user.username if d.user else "", d.channel) for d in Delivery.objects.filter(purpose=purpose))


@pytest.fixture
def team(clinic: Clinic, nurse: Any, clinician: Any) -> dict[str, Any]:
    no_email = staff_user(clinic, Role.NURSE, username="noemail")
    no_email.email = ""
    no_email.save()
    gone = staff_user(clinic, Role.NURSE, username="gone")
    gone.is_active = False
    gone.save()
    outsider = staff_user(ClinicFactory(name="Elsewhere"), Role.NURSE, username="outsider")
    return {"nurse": nurse, "clinician": clinician, "no_email": no_email, "outsider": outsider}


def test_a_high_alert_reaches_every_active_member_of_the_clinic_by_email_and_inbox(
    patient: Patient, team: dict[str, Any]
) -> None:
    alert = raise_alert(patient, "high")

    assert sent("alert") == [
        ("clinician", "email"),
        ("clinician", "inbox"),
        ("noemail", "inbox"),
        ("nurse", "email"),
        ("nurse", "inbox"),
    ]
    email = Delivery.objects.get(purpose="alert", user=team["nurse"], channel="email")
    assert email.address == "nurse@example.org" and email.alert == alert and email.patient is None
    assert email.idempotency_key == f"alert:{alert.id}:{team['nurse'].id}:email"
    assert f"Open it: /patients/{patient.id}/#alerts" in email.body
    assert "Platelets 18" in email.body and "HIGH" in email.subject
    assert email.due_at == OPENED


def test_raising_the_same_alert_again_writes_nothing_new(patient: Patient, team: dict[str, Any]) -> None:
    raise_alert(patient, "critical")
    raise_alert(patient, "critical")
    assert Delivery.objects.filter(purpose="alert").count() == 5


def test_medium_and_info_alerts_are_not_sent_at_once(patient: Patient, team: dict[str, Any]) -> None:
    raise_alert(patient, "medium")
    raise_alert(patient, "info", kind="platelets_rebound")
    assert not Delivery.objects.exists()


def test_an_alert_that_rises_to_high_notifies_staff_then(patient: Patient, team: dict[str, Any]) -> None:
    raise_alert(patient, "medium", kind="dose_overdue")
    assert not Delivery.objects.exists()
    raise_alert(patient, "high", kind="dose_overdue", at=OPENED + timedelta(days=14))
    assert len(sent("alert")) == 5


def test_medium_alerts_arrive_in_the_next_morning_digest_once(patient: Patient, team: dict[str, Any]) -> None:
    raise_alert(patient, "medium")
    other = cast(Patient, PatientFactory(clinic=patient.clinic))
    resolved = raise_alert(other, "medium", kind="ldh_not_normalized")
    resolved.status = "resolved"
    resolved.save()

    assert staff_sweep(datetime(2027, 1, 5, 7, 59, tzinfo=UTC))["digest_messages"] == 0
    assert staff_sweep(datetime(2027, 1, 5, 8, 0, tzinfo=UTC))["digest_messages"] == 5
    assert staff_sweep(datetime(2027, 1, 5, 8, 5, tzinfo=UTC))["digest_messages"] == 0

    assert sent("digest") == [
        ("clinician", "email"),
        ("clinician", "inbox"),
        ("noemail", "inbox"),
        ("nurse", "email"),
        ("nurse", "inbox"),
    ]
    digest = Delivery.objects.get(purpose="digest", user=team["nurse"], channel="inbox")
    assert "Platelets 18" in digest.body and "ldh_not_normalized" not in digest.body
    assert digest.idempotency_key == f"digest:{patient.clinic_id}:2027-01-05:{team['nurse'].id}:inbox"
    # The next day's digest only lists alerts opened since this one: nothing, so nothing is sent.
    assert staff_sweep(datetime(2027, 1, 6, 8, 0, tzinfo=UTC))["digest_messages"] == 0


def test_the_digest_goes_at_eight_clinic_time_in_summer_too(patient: Patient, team: dict[str, Any]) -> None:
    raise_alert(patient, "medium", at=datetime(2027, 7, 5, 12, tzinfo=UTC))
    assert staff_sweep(datetime(2027, 7, 6, 6, 59, tzinfo=UTC))["digest_messages"] == 0
    assert staff_sweep(datetime(2027, 7, 6, 7, 0, tzinfo=UTC))["digest_messages"] == 5  # 08:00 BST


def test_a_clinic_with_no_medium_alerts_gets_no_digest(clinic: Clinic, team: dict[str, Any]) -> None:
    assert staff_sweep(datetime(2027, 1, 5, 8, 0, tzinfo=UTC))["digest_messages"] == 0


def test_an_unacknowledged_high_alert_escalates_to_the_lead_after_24_hours_once(
    patient: Patient, team: dict[str, Any]
) -> None:
    lead = UserFactory(username="lead")
    Clinic.objects.filter(pk=patient.clinic_id).update(lead=lead)
    alert = raise_alert(patient, "high")

    assert staff_sweep(OPENED + timedelta(hours=23, minutes=59))["escalated"] == 0
    assert staff_sweep(OPENED + timedelta(hours=24))["escalated"] == 1
    assert staff_sweep(OPENED + timedelta(hours=30))["escalated"] == 0

    assert sent("escalation") == [("lead", "email"), ("lead", "inbox")]
    alert.refresh_from_db()
    assert alert.escalated_at == OPENED + timedelta(hours=24)
    body = Delivery.objects.get(purpose="escalation", channel="email").body
    assert "not been acknowledged after 24 hours" in body


def test_a_critical_alert_escalates_after_one_hour_to_the_clinic_admins_without_a_lead(
    patient: Patient, team: dict[str, Any]
) -> None:
    staff_user(patient.clinic, Role.ADMIN, username="admin1")
    raise_alert(patient, "critical")
    assert staff_sweep(OPENED + timedelta(minutes=59))["escalated"] == 0
    assert staff_sweep(OPENED + timedelta(hours=1))["escalated"] == 1
    assert sent("escalation") == [("admin1", "email"), ("admin1", "inbox")]


def test_an_acknowledged_alert_does_not_escalate(patient: Patient, team: dict[str, Any]) -> None:
    alert = raise_alert(patient, "high")
    alert_acknowledge(alert=alert, user=team["nurse"], note="Called the patient", at=OPENED + timedelta(hours=2))
    assert staff_sweep(OPENED + timedelta(hours=48))["escalated"] == 0
    assert not Delivery.objects.filter(purpose="escalation").exists()


def test_escalation_time_is_a_setting(patient: Patient, team: dict[str, Any], settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "ESCALATE_HIGH_AFTER_HOURS": 4}
    raise_alert(patient, "high")
    assert staff_sweep(OPENED + timedelta(hours=4))["escalated"] == 1


def test_links_are_absolute_when_the_site_url_is_set(patient: Patient, team: dict[str, Any], settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "SITE_URL": "https://cobalt.example.org/"}
    alert = raise_alert(patient, "high")
    body = Delivery.objects.filter(purpose="alert").first().body  # type: ignore[union-attr]
    assert f"Open it: https://cobalt.example.org/patients/{alert.patient_id}/#alerts" in body


def test_a_high_alert_that_becomes_critical_is_sent_again_once(patient: Patient, team: dict[str, Any]) -> None:
    raise_alert(patient, "high")
    raise_alert(patient, "critical", at=OPENED + timedelta(hours=3))
    raise_alert(patient, "critical", at=OPENED + timedelta(hours=4))
    subjects = sorted(d.subject.split("]")[0] for d in Delivery.objects.filter(purpose="alert", channel="inbox"))
    assert subjects == ["[CRITICAL"] * 3 + ["[HIGH"] * 3
