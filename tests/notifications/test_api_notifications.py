"""API: the delivery log (staff only, own clinics, masked recipients, filters) and the staff inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.alerts import alert_raise
from notifications.models import Delivery
from patients.models import Clinic, Patient
from tests.conftest import client_for
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

DUE = datetime(2026, 1, 5, 10, tzinfo=UTC)


def reminder(
    patient: Patient,
    key: str,
    *,
    channel: str = "email",
    address: str = "jo@example.com",
    status: str = "pending",
    due_at: datetime = DUE,
    purpose: str = "dose_reminder",
) -> Delivery:
    return Delivery.objects.create(
        idempotency_key=key,
        purpose=purpose,
        channel=channel,
        patient=patient,
        address=address,
        body="Reminder",
        due_at=due_at,
        status=status,
    )


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def log(patient: Patient, other_clinic: Clinic) -> dict[str, Delivery]:
    stranger = cast(Patient, PatientFactory(clinic=other_clinic))
    return {
        "email": reminder(patient, "a", status="sent"),
        "sms": reminder(patient, "b", channel="sms", address="+447700900123", due_at=DUE + timedelta(days=2)),
        "failed": reminder(patient, "c", status="failed", purpose="recheck_reminder"),
        "elsewhere": reminder(stranger, "d"),
    }


def test_anonymous_is_401_and_a_patient_is_403(anon_api: APIClient, patient: Patient) -> None:
    assert anon_api.get("/api/notifications/").status_code == 401
    patient.user = UserFactory(username="patient-user")
    patient.save()
    assert client_for(patient.user).get("/api/notifications/").status_code == 403


def test_staff_see_only_their_clinics_deliveries_with_masked_recipients(
    api: APIClient, log: dict[str, Delivery], patient: Patient
) -> None:
    response = api.get("/api/notifications/")
    assert sorted(ids(response)) == sorted(log[k].id for k in ("email", "sms", "failed"))
    rows = {row["id"]: row for row in response.json()["results"]}
    assert rows[log["email"].id]["recipient"] == "j***@example.com"
    assert rows[log["sms"].id]["recipient"] == "+44*******123"
    assert set(rows[log["email"].id]) == {
        "id",
        "purpose",
        "channel",
        "status",
        "recipient",
        "patient",
        "due_at",
        "sent_at",
        "attempts",
        "last_error",
        "created_at",
    }
    assert rows[log["email"].id]["patient"] == patient.id


def test_a_superuser_sees_every_clinic(log: dict[str, Delivery]) -> None:
    root = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    assert len(ids(client_for(root).get("/api/notifications/"))) == 4


def test_it_filters_by_status_channel_purpose_patient_and_due_time(
    api: APIClient, log: dict[str, Delivery], patient: Patient
) -> None:
    assert ids(api.get("/api/notifications/", {"status": "failed"})) == [log["failed"].id]
    assert ids(api.get("/api/notifications/", {"channel": "sms"})) == [log["sms"].id]
    assert ids(api.get("/api/notifications/", {"purpose": "recheck_reminder"})) == [log["failed"].id]
    assert len(ids(api.get("/api/notifications/", {"patient": patient.id}))) == 3
    later = (DUE + timedelta(days=1)).isoformat()
    assert ids(api.get("/api/notifications/", {"due_from": later})) == [log["sms"].id]
    assert log["sms"].id not in ids(api.get("/api/notifications/", {"due_to": later}))


def test_bad_filters_are_400_naming_the_field(api: APIClient, log: dict[str, Delivery]) -> None:
    response = api.get("/api/notifications/", {"due_from": "next tuesday", "status": "lost"})
    assert response.status_code == 400
    assert {"due_from", "status"} <= set(response.json())


def test_staff_alert_messages_show_in_the_log_and_the_inbox(api: APIClient, nurse: Any, patient: Patient) -> None:
    alert, _ = alert_raise(
        patient=patient, kind="platelets_critical", severity="high", message="Platelets 18", at=timezone.now()
    )
    rows = api.get("/api/notifications/", {"purpose": "alert"}).json()["results"]
    assert {(r["channel"], r["patient"]) for r in rows} == {("email", patient.id), ("inbox", patient.id)}

    inbox = api.get("/api/notifications/inbox/").json()["results"]
    assert [(m["purpose"], m["alert"]) for m in inbox] == [("alert", alert.id)]
    assert "Platelets 18" in inbox[0]["body"] and inbox[0]["subject"]


def inbox_message(user: Any, key: str, due_at: datetime, read: bool = False) -> Delivery:
    return Delivery.objects.create(
        idempotency_key=key,
        purpose="digest",
        channel="inbox",
        user=user,
        subject=key,
        body="b",
        due_at=due_at,
        read_at=due_at if read else None,
    )


def test_the_inbox_lists_own_messages_unread_first_and_marks_them_read(api: APIClient, nurse: Any) -> None:
    now = timezone.now()
    old_unread = inbox_message(nurse, "old-unread", now - timedelta(days=2))
    new_read = inbox_message(nurse, "new-read", now - timedelta(hours=1), read=True)
    new_unread = inbox_message(nurse, "new-unread", now - timedelta(hours=2))
    inbox_message(nurse, "future", now + timedelta(days=1))
    inbox_message(UserFactory(username="someone"), "theirs", now)

    assert ids(api.get("/api/notifications/inbox/")) == [new_unread.id, old_unread.id, new_read.id]

    response = api.post(f"/api/notifications/{old_unread.id}/read/")
    assert response.status_code == 200 and response.json()["read_at"]
    first_read = response.json()["read_at"]
    assert api.post(f"/api/notifications/{old_unread.id}/read/").json()["read_at"] == first_read
    assert ids(api.get("/api/notifications/inbox/"))[0] == new_unread.id


def test_reading_someone_elses_message_or_a_patient_reminder_is_404(api: APIClient, log: dict[str, Delivery]) -> None:
    theirs = inbox_message(UserFactory(username="someone"), "theirs", timezone.now())
    assert api.post(f"/api/notifications/{theirs.id}/read/").status_code == 404
    assert api.post(f"/api/notifications/{log['email'].id}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_a_due_time_without_an_offset_is_400(api: APIClient, log: dict[str, Delivery]) -> None:
    response = api.get("/api/notifications/", {"due_to": "2026-01-05T10:00:00"})
    assert response.status_code == 400 and "offset" in str(response.json()["due_to"])
