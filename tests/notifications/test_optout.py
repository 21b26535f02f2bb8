"""Patients stop their reminders without calling the clinic: one-click unsubscribe from any email (RFC 8058)
and STOP / START / HELP by text through the signed inbound hook. Every change is audited and answered."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from notifications import optout
from notifications.channels import sms
from notifications.delivery import deliver_one
from notifications.models import Delivery
from notifications.outbox import enqueue
from notifications.unsubscribe import unsubscribe_token
from regimens.models import Protocol
from regimens.services import regimen_start
from tests.factories import PatientFactory
from tests.notifications.test_reminders import clinical_words_in
from tracker import sweeps

pytestmark = pytest.mark.django_db

SECRET = "inbound-test-secret"
START = date(2027, 1, 4)


def at(on: date, hour: int) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture(autouse=True)
def setup(settings: Any, clock: Any) -> None:
    settings.COBALT = {
        **settings.COBALT,
        "SITE_URL": "https://cobalt.example.org",
        "SMS_BACKEND": "memory",
        "SMS_INBOUND_SECRET": SECRET,
    }
    sms.reset()
    clock.move_to(at(date(2027, 1, 1), 6))


@pytest.fixture
def patient(clinic: Any) -> Any:
    clinic.email = "appointments@riverside.example.org"
    clinic.phone = "020 7946 0000"
    clinic.save()
    return PatientFactory(clinic=clinic, given_name="Jo", phone="+447700900123")


def first_reminder(patient: Any) -> Delivery:
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    sweeps.run("reminders", at(date(2027, 1, 3), 6))
    return Delivery.objects.get(patient=patient, purpose="dose_reminder")


def unsubscribe_path(message: Any) -> str:
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<https://cobalt.example.org/unsubscribe/") and header.endswith(">")
    return urllib.parse.urlsplit(header[1:-1]).path


# --- Email ---------------------------------------------------------------------------------------------------


def test_every_patient_email_carries_one_click_unsubscribe_and_the_clinics_reply_to(patient: Any) -> None:
    reminder = first_reminder(patient)
    assert deliver_one(reminder.pk, now=reminder.due_at) == "sent"
    (message,) = mail.outbox
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Reply-To"] == "appointments@riverside.example.org"
    assert "Reply-To: appointments@riverside.example.org" in message.message().as_string()
    assert unsubscribe_path(message).startswith("/unsubscribe/")
    # Also in the text, for mail programs that do not show the header.
    assert f"To stop these reminders: https://cobalt.example.org{unsubscribe_path(message)}" in message.body
    assert clinical_words_in(message.body) == []


def test_a_staff_email_carries_no_patient_unsubscribe_link(patient: Any, nurse: Any) -> None:
    nurse.email = "nurse@riverside.example.org"
    nurse.save()
    staff, _ = enqueue(key="staff-1", purpose="digest", channel="email", body="digest", due_at=at(date(2027, 1, 1), 6),
                       user=nurse, address=nurse.email, patient=patient)
    assert deliver_one(staff.pk, now=at(date(2027, 1, 1), 7)) == "sent"
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


def test_opening_the_link_only_asks_and_the_mail_providers_one_click_post_opts_out(patient: Any) -> None:
    reminder = first_reminder(patient)
    deliver_one(reminder.pk, now=reminder.due_at)
    path = unsubscribe_path(mail.outbox[0])
    client = Client(enforce_csrf_checks=True)  # the provider has no cookie and no CSRF token

    page = client.get(path)
    assert page.status_code == 200 and b"Stop my reminders" in page.content
    patient.refresh_from_db()
    assert patient.reminder_channel == "email"  # a link scanner opening it changes nothing

    done = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200 and b"You will get no more reminders" in done.content
    patient.refresh_from_db()
    assert patient.reminder_channel == "none"
    assert patient.history.first().history_change_reason == "opted out: one-click unsubscribe"


def test_an_opt_out_cancels_the_reminders_already_written(patient: Any) -> None:
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    sweeps.run("reminders", at(date(2027, 1, 2), 12))  # written, due tomorrow 10:00
    pending = Delivery.objects.get(patient=patient, purpose="dose_reminder", status="pending")
    Client().post(f"/unsubscribe/{unsubscribe_token(patient.pk)}")
    sweeps.run("reminders", at(date(2027, 1, 3), 6))
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert not Delivery.objects.filter(patient=patient, status="pending").exists()


def test_a_forged_or_damaged_link_is_refused_and_changes_nothing(patient: Any) -> None:
    good = unsubscribe_token(patient.pk)
    for bad in [good[:-2] + "xx", f"{patient.pk}", "nonsense"]:
        response = Client().post(f"/unsubscribe/{bad}")
        assert response.status_code == 404
        assert b"This link does not work" in response.content
    patient.refresh_from_db()
    assert patient.reminder_channel == "email"


# --- SMS -----------------------------------------------------------------------------------------------------


def text(body: str, sender: str = "+447700900123", sid: str = "SM1", secret: str = SECRET) -> Any:
    payload = urllib.parse.urlencode({"From": sender, "Body": body, "MessageSid": sid})
    signature = optout.signature(payload.encode(), secret)
    return Client(enforce_csrf_checks=True).post(
        "/hooks/sms/inbound/", payload, content_type="application/x-www-form-urlencoded",
        headers={"X-Cobalt-Signature": signature},
    )


def deliver_replies() -> list[str]:
    for delivery in Delivery.objects.filter(purpose="patient_reply", status="pending").order_by("id"):
        deliver_one(delivery.pk, now=at(date(2027, 1, 1), 6))
    return [m.body for m in sms.outbox]


def test_stop_then_start_by_text_each_answered_and_audited(patient: Any) -> None:
    patient.reminder_channel = "sms"
    patient.save()

    assert text("Stop").json() == {"keyword": "stop", "patients": 1, "replies": 1}
    patient.refresh_from_db()
    assert patient.reminder_channel == "none"
    assert patient.history.first().history_change_reason == "opted out: texted STOP"

    assert text("START", sid="SM2").json()["keyword"] == "start"
    patient.refresh_from_db()
    assert patient.reminder_channel == "sms"
    assert patient.history.first().history_change_reason == "opted in: texted START"

    replies = deliver_replies()
    assert len(replies) == 2
    assert "no more reminders" in replies[0] and "START" in replies[0]
    assert "again" in replies[1] and "STOP" in replies[1]
    assert all(m.to == "+447700900123" for m in sms.outbox)
    for reply in replies:
        assert "Riverside Haematology" in reply and clinical_words_in(reply) == []


def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(patient: Any) -> None:
    patient.reminder_channel = "sms"
    patient.save()
    assert text("STOP", secret="wrong").status_code == 403
    unsigned = Client().post("/hooks/sms/inbound/", {"From": "+447700900123", "Body": "STOP"})
    assert unsigned.status_code == 403
    patient.refresh_from_db()
    assert patient.reminder_channel == "sms"
    assert not Delivery.objects.filter(purpose="patient_reply").exists()


def test_no_secret_configured_refuses_every_text(patient: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "SMS_INBOUND_SECRET": ""}
    payload = urllib.parse.urlencode({"From": "+447700900123", "Body": "STOP"})
    response = Client().post("/hooks/sms/inbound/", payload, content_type="application/x-www-form-urlencoded",
                             headers={"X-Cobalt-Signature": optout.signature(payload.encode(), "")})
    assert response.status_code == 403


def test_help_answers_with_the_clinic_and_how_to_reach_it_in_the_patients_language(patient: Any) -> None:
    patient.language = "es"
    patient.save()
    assert text("ayuda").json()["keyword"] == "help"
    (reply,) = deliver_replies()
    assert "020 7946 0000" in reply and "Recordatorios" in reply
    patient.refresh_from_db()
    assert patient.reminder_channel == "email"  # HELP changes nothing


def test_a_retried_webhook_answers_once(patient: Any) -> None:
    patient.reminder_channel = "sms"
    patient.save()
    text("STOP", sid="SM9")
    assert text("STOP", sid="SM9").json()["replies"] == 0
    assert Delivery.objects.filter(purpose="patient_reply").count() == 1


def test_an_unknown_number_gets_no_answer_and_reveals_nothing(patient: Any) -> None:
    assert text("STOP", sender="+447700900999").json() == {"keyword": "stop", "patients": 0, "replies": 0}
    assert not Delivery.objects.filter(purpose="patient_reply").exists()


def test_stop_from_a_number_shared_by_two_patients_stops_both(clinic: Any, patient: Any) -> None:
    sibling = PatientFactory(clinic=clinic, phone="+447700900123", reminder_channel="sms")
    patient.reminder_channel = "sms"
    patient.save()
    assert text("STOP").json()["patients"] == 2
    sibling.refresh_from_db()
    patient.refresh_from_db()
    assert sibling.reminder_channel == patient.reminder_channel == "none"


def test_a_text_without_a_sender_is_a_400_naming_it(patient: Any) -> None:
    response = text("STOP", sender="")
    assert response.status_code == 400 and "From" in response.json()


def test_reminders_offer_to_reply_only_where_a_reply_reaches_the_clinic(clinic: Any) -> None:
    with_email = first_reminder(PatientFactory(clinic=clinic, given_name="Jo"))
    assert "or reply to this message" not in with_email.body  # the clinic has no email: no Reply-To
    clinic.email = "appointments@riverside.example.org"
    clinic.save()
    by_email = first_reminder(PatientFactory(clinic=clinic, given_name="Al"))
    by_text = first_reminder(PatientFactory(clinic=clinic, given_name="Sam", reminder_channel="sms"))
    assert "or reply to this message" in by_email.body
    assert "reply" not in by_text.body
