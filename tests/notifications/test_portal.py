"""The patient portal /me/ (notifications/portal.py, portal_access.py): a single-use, expiring link asked for by
email or text (the form never says whether the contact is known), then the patient's own appointments,
reminder choices, opt-out and calendar link; only ever themselves; the session runs out."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from notifications.channels import sms
from notifications.delivery import deliver_one
from notifications.models import Delivery, PortalLink
from regimens.models import Protocol
from regimens.services import regimen_start
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)
NOW = datetime(2027, 1, 2, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def setup(settings: Any, clock: Any) -> None:
    settings.COBALT = {**settings.COBALT, "SITE_URL": "https://cobalt.example.org", "SMS_BACKEND": "memory"}
    sms.reset()
    clock.move_to(NOW)


@pytest.fixture
def jo(clinic: Any) -> Any:
    patient = PatientFactory(clinic=clinic, given_name="Jo", email="jo@example.org", phone="+447700900123")
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    return patient


def ask_link(client: Client, contact: str) -> Any:
    return client.post("/me/link/", {"contact": contact})


def sent_link() -> str:
    for delivery in Delivery.objects.filter(purpose="portal_link", status="pending").order_by("id"):
        deliver_one(delivery.pk, now=NOW)
    bodies = [m.body for m in mail.outbox] + [m.body for m in sms.outbox]
    links = re.findall(r"https://cobalt\.example\.org(/me/sign-in/\S+)", "\n".join(bodies))
    assert links, bodies
    return links[-1]


def signed_in_client(contact: str = "jo@example.org") -> Client:
    client = Client()
    ask_link(client, contact)
    path = sent_link()
    assert client.post(path).status_code == 302
    return client


def test_it_sends_a_link_by_email_that_signs_in_once(jo: Any) -> None:
    client = Client()
    page = ask_link(client, "JO@example.org")
    assert page.status_code == 200 and b"Check your messages" in page.content
    path = sent_link()
    assert mail.outbox[0].to == ["jo@example.org"]
    assert "Jo" in mail.outbox[0].body and "30 minutes" in mail.outbox[0].body

    assert client.get(path).status_code == 200  # opening it (or a mail scanner) does not use it
    assert client.post(path).status_code == 302
    home = client.get("/me/")
    assert home.status_code == 200 and b"Hello Jo" in home.content
    assert "Monday 4 January 2027" in home.content.decode()

    other = Client()
    assert other.post(path).status_code == 404  # used
    assert b"This link does not work" in other.get(path).content


def test_by_text_too(jo: Any) -> None:
    ask_link(Client(), "+44 7700 900123")
    sent_link()
    assert sms.outbox[0].to == "+447700900123"


def test_the_form_says_the_same_for_an_unknown_contact_and_sends_nothing(jo: Any) -> None:
    known = ask_link(Client(), "jo@example.org")
    unknown = ask_link(Client(), "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    def without_csrf(body: bytes) -> bytes:
        return re.sub(rb'name="csrf-token" content="[^"]*"', b"", body)

    assert without_csrf(known.content) == without_csrf(unknown.content)
    assert Delivery.objects.filter(purpose="portal_link").count() == 1


def test_an_empty_request_names_the_field(db: Any) -> None:
    response = ask_link(Client(), "")
    assert response.status_code == 400
    assert b"Email address or mobile phone number" in response.content and b"There is a problem" in response.content


def test_a_link_expires(jo: Any, clock: Any) -> None:
    client = Client()
    ask_link(client, "jo@example.org")
    path = sent_link()
    clock.move_to(NOW + timedelta(minutes=31))
    assert client.post(path).status_code == 404


def test_one_link_a_minute_at_most(jo: Any, clock: Any) -> None:
    for _ in range(3):
        ask_link(Client(), "jo@example.org")
    assert PortalLink.objects.count() == 1
    clock.move_to(NOW + timedelta(minutes=2))
    ask_link(Client(), "jo@example.org")
    assert PortalLink.objects.count() == 2


def test_only_the_token_hash_is_stored(jo: Any) -> None:
    ask_link(Client(), "jo@example.org")
    token = sent_link().rsplit("/", 1)[1]
    link = PortalLink.objects.get()
    assert token not in link.token_hash and len(link.token_hash) == 64


def test_the_session_runs_out(jo: Any, clock: Any) -> None:
    client = signed_in_client()
    clock.move_to(NOW + timedelta(minutes=29))
    assert b"Hello Jo" in client.get("/me/").content
    clock.move_to(NOW + timedelta(minutes=31))
    page = client.get("/me/")
    assert b"Hello Jo" not in page.content and b"Send me a link" in page.content
    assert client.post("/me/reminders/", {"reminder_channel": "none", "language": "en"}).status_code == 302
    jo.refresh_from_db()
    assert jo.reminder_channel == "email"


def test_the_patient_changes_channel_language_and_opts_out_audited(jo: Any) -> None:
    client = signed_in_client()
    assert client.post("/me/reminders/", {"reminder_channel": "sms", "language": "es"}).status_code == 302
    jo.refresh_from_db()
    assert (jo.reminder_channel, jo.language) == ("sms", "es")
    assert jo.history.first().history_change_reason == "changed by the patient in the portal"
    client.post("/me/reminders/", {"reminder_channel": "none", "language": "es"})
    jo.refresh_from_db()
    assert jo.reminder_channel == "none"


def test_text_reminders_need_a_number_and_the_error_names_the_field(clinic: Any) -> None:
    PatientFactory(clinic=clinic, given_name="Al", email="al@example.org", phone="")
    client = signed_in_client("al@example.org")
    response = client.post("/me/reminders/", {"reminder_channel": "sms", "language": "en"})
    assert response.status_code == 400
    assert b"How should we remind you of appointments?" in response.content
    assert b"no mobile phone number on file" in response.content


def test_the_calendar_link_is_shown_and_renewed_by_the_patient(jo: Any) -> None:
    client = signed_in_client()
    old = jo.ical_token
    assert f"/ical/{old}.ics" in client.get("/me/").content.decode()
    assert client.post("/me/calendar-link/").status_code == 302
    jo.refresh_from_db()
    assert jo.ical_token != old
    assert Client().get(f"/ical/{old}.ics").status_code == 404
    assert f"webcal://cobalt.example.org/ical/{jo.ical_token}.ics" in client.get("/me/").content.decode()


def test_a_patient_sees_only_themselves(jo: Any, clinic: Any) -> None:
    other = PatientFactory(clinic=clinic, given_name="Sam", email="sam@example.org")
    client = signed_in_client()
    page = client.get("/me/").content.decode()
    assert "Sam" not in page and other.ical_token not in page
    client.post("/me/calendar-link/")
    other.refresh_from_db()
    jo.refresh_from_db()
    assert other.history.count() == 1  # untouched


def test_signing_out_ends_the_session(jo: Any) -> None:
    client = signed_in_client()
    client.post("/me/sign-out/")
    assert b"Send me a link" in client.get("/me/").content


def test_a_staff_login_is_not_a_portal_session(jo: Any, nurse: Any) -> None:
    client = Client()
    client.force_login(nurse)
    page = client.get("/me/")
    assert b"Send me a link" in page.content and b"Hello Jo" not in page.content


def test_the_help_page_is_open_to_all(db: Any) -> None:
    page = Client().get("/me/help/")
    assert page.status_code == 200 and b"reply STOP" in page.content


def test_portal_query_counts_do_not_grow_with_appointments(jo: Any, clinic: Any,
                                                           django_assert_max_num_queries: Any) -> None:
    PatientFactory(clinic=clinic, given_name="Al", email="al@example.org")  # no appointments at all
    al_client = signed_in_client("al@example.org")
    with django_assert_max_num_queries(10):
        al_client.get("/me/")
    jo_client = signed_in_client()
    assert jo.doses.count() >= 10
    with django_assert_max_num_queries(10):
        jo_client.get("/me/")
