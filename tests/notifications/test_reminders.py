"""Patient reminders (notifications/reminders.py): written on the right day at the right
local time, once, in the patient's language, with nothing clinical in them; cancelled when the dose is
recorded first; opt-out and missing contact details respected."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from typing import Any, cast
from unittest import mock

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import messages
from notifications import reminders as reminders_module
from notifications.delivery import deliver_one
from notifications.models import Alert, Delivery
from notifications.outbox import enqueue
from notifications.reminders import still_relevant
from notifications.timing import Timing, in_quiet_hours
from patients.models import Patient
from regimens.models import Protocol, Regimen, ScheduledDose
from regimens.services import dose_record_administration, dose_record_not_given, regimen_start
from tests.factories import PatientFactory
from tracker import sweeps

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")
START = date(2027, 1, 4)  # a Monday
CLINICAL_WORDS = [
    "b12",
    "cobalamin",
    "hydroxocobalamin",
    "cyanocobalamin",
    "mcg",
    "mg",
    "anaemia",
    "anemia",
    "hemoglobin",
    "haemoglobin",
    "injection",
    "dose",
    "vitamin",
    "blood",
    "lab",
    "deficiency",
    "pernicious",
]


def utc(on: date, hour: int, minute: int = 0) -> datetime:
    return datetime(on.year, on.month, on.day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock() -> Iterator[Any]:
    with time_machine.travel(utc(START - timedelta(days=7), 6), tick=False) as traveller:
        yield traveller


def new_patient(clinic: Any, **fields: Any) -> Patient:
    return cast(Patient, PatientFactory(clinic=clinic, given_name="Jo", **fields))


def start(patient: Patient, code: str, on: date = START) -> Regimen:
    return regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on)


def remind(at: datetime) -> dict[str, int]:
    return sweeps.run("reminders", at)


def reminders(patient: Patient) -> list[Delivery]:
    return list(Delivery.objects.filter(patient=patient).order_by("due_at", "id"))


def local(delivery: Delivery) -> datetime:
    return delivery.due_at.astimezone(LONDON)


def clinical_words_in(text: str) -> list[str]:
    return [w for w in CLINICAL_WORDS if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]


# --- Pure timing rules -------------------------------------------------------------------------------------

TIMING = Timing(
    local_time=time(10),
    quiet_start=time(21),
    quiet_end=time(8),
    lookahead=timedelta(hours=24),
    stale=timedelta(hours=12),
)


def test_it_sends_at_ten_local_on_both_sides_of_the_dst_changes() -> None:
    assert TIMING.send_at(date(2027, 3, 27), "Europe/London") == utc(date(2027, 3, 27), 10)  # GMT
    assert TIMING.send_at(date(2027, 3, 28), "Europe/London") == utc(date(2027, 3, 28), 9)  # BST from 01:00 UTC
    assert TIMING.send_at(date(2027, 10, 30), "Europe/London") == utc(date(2027, 10, 30), 9)  # BST
    assert TIMING.send_at(date(2027, 10, 31), "Europe/London") == utc(date(2027, 10, 31), 10)  # GMT again


def test_quiet_hours_wrap_midnight_or_not() -> None:
    assert in_quiet_hours(time(22), time(21), time(8))
    assert in_quiet_hours(time(7, 59), time(21), time(8))
    assert not in_quiet_hours(time(8), time(21), time(8))
    assert in_quiet_hours(time(13), time(12), time(14))
    assert not in_quiet_hours(time(13), time(9), time(9))


def test_a_reminder_time_inside_quiet_hours_moves_to_their_end_on_the_same_day() -> None:
    late = Timing(time(22, 30), time(21), time(8), timedelta(hours=24), timedelta(hours=12))
    early = Timing(time(6), time(21), time(8), timedelta(hours=24), timedelta(hours=12))
    assert late.send_at(date(2027, 1, 10), "Europe/London") == utc(date(2027, 1, 10), 8)
    assert early.send_at(date(2027, 7, 10), "Europe/London") == utc(date(2027, 7, 10), 7)  # 08:00 BST


def test_it_writes_within_the_lookahead_and_never_a_stale_one() -> None:
    send = utc(date(2027, 1, 10), 10)
    assert not TIMING.in_window(send, send - timedelta(hours=24, seconds=1), "Europe/London")
    assert TIMING.in_window(send, send - timedelta(hours=24), "Europe/London")
    assert TIMING.in_window(send, send + timedelta(hours=10, minutes=59), "Europe/London")
    assert not TIMING.in_window(send, send + timedelta(hours=12, seconds=1), "UTC")


def test_a_late_reminder_is_not_written_during_quiet_hours() -> None:
    # Due at 10:00 and still within the 12 hours, but at 21:00 it would be sent in quiet hours.
    send = utc(date(2027, 1, 10), 10)
    assert TIMING.in_window(send, utc(date(2027, 1, 10), 20, 59), "Europe/London")
    assert not TIMING.in_window(send, utc(date(2027, 1, 10), 21), "Europe/London")


# --- Texts -------------------------------------------------------------------------------------------------


def test_english_and_spanish_texts_name_the_clinic_the_date_and_how_to_change_it() -> None:
    context = {"name": "Ana", "clinic": "Riverside", "clinic_phone": "020 7946 0000", "date": date(2027, 4, 9)}
    subject, body = messages.render("dose_reminder", "en", context)
    assert "Friday 9 April 2027" in body and "Riverside" in subject
    assert "call Riverside on 020 7946 0000 or reply" in body
    subject, body = messages.render("dose_reminder", "es-MX", context)
    assert "viernes 9 de abril de 2027" in body and subject.startswith("Recordatorio")
    assert "llame a Riverside al 020 7946 0000" in body
    # No translation: English.
    assert "Friday 9 April 2027" in messages.render("dose_reminder", "fr", context)[1]


def test_no_patient_text_in_any_language_carries_clinical_words() -> None:
    context = {
        "name": "Ana",
        "clinic": "Riverside",
        "clinic_phone": "1",
        "date": date(2027, 4, 9),
        "old_date": date(2027, 4, 7),
        "start": date(2027, 4, 9),
        "end": date(2027, 4, 16),
        "link": "https://cobalt.example.org/me/sign-in/x",
        "minutes": 30,
    }
    every_line = [
        ("missed", {"date": date(2027, 4, 2)}),
        ("moved", {"old_date": date(2027, 4, 7), "date": date(2027, 4, 9)}),
        ("next", {"date": date(2027, 4, 9)}),
        ("book", {"start": date(2027, 4, 9), "end": date(2027, 4, 16)}),
        ("home", {}),
    ]
    assert set(messages.PATIENT_TEXTS) >= {
        "dose_reminder",
        "recheck_reminder",
        "dose_overdue",
        "appointment_moved",
        "home_dose_prompt",
        "portal_link",
    }
    for language in ("en", "es"):
        for purpose in messages.PATIENT_TEXTS:  # every patient text, the new ones included
            subject, body = messages.render(purpose, language, context)
            assert clinical_words_in(subject + " " + body) == [], (purpose, language)
        subject, body = messages.render_combined(language, context, every_line)
        assert clinical_words_in(subject + " " + body) == [], ("combined", language)
        for kind in messages.SMS_REPLIES:
            reply = messages.sms_reply(kind, language, clinic="Riverside", clinic_phone="1")
            assert clinical_words_in(reply) == [], (kind, language)


# --- The sweep, day by day ---------------------------------------------------------------------------------


def test_day_by_day_it_writes_exactly_the_listed_reminders(clinic: Any, clock: Any) -> None:
    # hydroxo-uk-standard from Monday 2027-01-04 (RULES example): loading on 4, 6, 8, 11, 13, 15 January,
    # first maintenance dose on 2027-04-09. Each dose is given on its day at 11:00 UTC.
    clinic.phone = "020 7946 0000"
    clinic.save()
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    day = START - timedelta(days=7)
    while day <= date(2027, 4, 10):
        clock.move_to(utc(day, 6))
        remind(utc(day, 6))
        clock.move_to(utc(day, 12))
        for dose in ScheduledDose.objects.filter(patient=patient, status="planned", due_date=day):
            dose_record_administration(dose=dose, administered_at=utc(day, 11))
        day += timedelta(days=1)

    doses = [(local(d).date(), d.dose.due_date if d.dose else None) for d in reminders(patient) if d.dose_id]
    assert doses == [
        (date(2027, 1, 3), date(2027, 1, 4)),
        (date(2027, 1, 5), date(2027, 1, 6)),
        (date(2027, 1, 7), date(2027, 1, 8)),
        (date(2027, 1, 10), date(2027, 1, 11)),
        (date(2027, 1, 12), date(2027, 1, 13)),
        (date(2027, 1, 14), date(2027, 1, 15)),
        (date(2027, 4, 2), date(2027, 4, 9)),  # maintenance: 7 days before
        (date(2027, 4, 8), date(2027, 4, 9)),  # and the day before
    ]
    # No baseline results: L-6 (days 14 and 28, ± 3), L-7 (day 56 ± 7) and L-8 (month 3), each 2 days before
    # its window opens (RULES "Lab-recheck plan").
    rechecks = [(local(d).date(), d.recheck.rule, d.recheck.window_start) for d in reminders(patient) if d.recheck]
    assert rechecks == [
        (date(2027, 1, 13), "L-6", date(2027, 1, 15)),
        (date(2027, 1, 27), "L-6", date(2027, 1, 29)),
        (date(2027, 2, 20), "L-7", date(2027, 2, 22)),
        (date(2027, 3, 19), "L-8", date(2027, 3, 21)),
    ]
    for delivery in reminders(patient):
        assert local(delivery).time() == time(10)
        assert delivery.channel == "email" and delivery.address == patient.email
        assert delivery.purpose in ("dose_reminder", "recheck_reminder")
        assert clinical_words_in(delivery.subject + " " + delivery.body) == []
        assert "Riverside Haematology" in delivery.body and "020 7946 0000" in delivery.body


def test_the_same_instant_twice_writes_nothing_new(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    first = remind(utc(date(2027, 1, 3), 6))
    second = remind(utc(date(2027, 1, 3), 6))
    assert first["reminders_written"] == 1
    assert second["reminders_written"] == 0
    assert len(reminders(patient)) == 1


def test_run_sweeps_command_runs_the_reminders(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    out = StringIO()
    call_command("run_sweeps", "--at", utc(date(2027, 1, 3), 6).isoformat(), "--only", "reminders", stdout=out)
    assert "reminders_written=1" in out.getvalue()


def test_europe_london_patient_is_reminded_at_ten_local_across_both_dst_changes(clinic: Any, clock: Any) -> None:
    # ileal-resection: one lifelong monthly (maintenance) phase, first dose on the start date.
    spring, autumn = new_patient(clinic), new_patient(clinic)
    clock.move_to(utc(date(2027, 3, 1), 6))
    start(spring, "ileal-resection", on=date(2027, 3, 29))  # Monday after the clocks go forward
    start(autumn, "ileal-resection", on=date(2027, 11, 1))  # Monday after the clocks go back
    for day in [date(2027, 3, 22), date(2027, 3, 28), date(2027, 10, 25), date(2027, 10, 31)]:
        remind(utc(day, 0))
    march = [d.due_at for d in reminders(spring) if d.due_at.month == 3]
    assert march == [utc(date(2027, 3, 22), 10), utc(date(2027, 3, 28), 9)]
    assert [d.due_at for d in reminders(autumn)] == [utc(date(2027, 10, 25), 9), utc(date(2027, 10, 31), 10)]


def test_quiet_hours_hold_when_the_reminder_time_is_set_inside_them(clinic: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REMINDER_LOCAL_TIME": "23:00"}
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 2), 12))
    [delivery] = reminders(patient)
    assert local(delivery) == datetime(2027, 1, 3, 8, tzinfo=LONDON)


def test_a_reminder_is_not_written_when_its_time_is_long_past(clinic: Any, settings: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    # The system was down: the 10:00 reminder of 3 January is more than 12 hours late at 22:01.
    settings.COBALT = {**settings.COBALT, "REMINDER_QUIET_START": "23:00"}
    assert remind(utc(date(2027, 1, 3), 22, 1))["reminders_written"] == 0
    assert remind(utc(date(2027, 1, 3), 21, 59))["reminders_written"] == 1


def test_a_patient_who_opted_out_gets_nothing(clinic: Any) -> None:
    patient = new_patient(clinic, reminder_channel="none", email="")
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    assert reminders(patient) == []
    assert not Alert.objects.filter(patient=patient).exists()


def test_opting_out_after_the_reminder_was_written_cancels_it(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    [delivery] = reminders(patient)
    Patient.objects.filter(pk=patient.pk).update(reminder_channel="none")
    assert still_relevant(delivery) is False
    remind(utc(date(2027, 1, 3), 7))
    delivery.refresh_from_db()
    assert delivery.status == "cancelled"


def test_the_worker_holds_a_late_reminder_until_quiet_hours_end_but_not_a_staff_message(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    [delivery] = reminders(patient)
    night = utc(date(2027, 1, 3), 22)  # the workers were behind: 22:00 in London is in the quiet hours
    assert deliver_one(delivery.pk, now=night) == "deferred"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert local(delivery) == datetime(2027, 1, 4, 8, tzinfo=LONDON)
    staff, _ = enqueue(
        key="t:staff", purpose="alert", channel="email", address="lead@example.test", body="New alert", due_at=night
    )
    assert deliver_one(staff.pk, now=night) == "sent"


def test_sms_reminders_go_to_the_phone(clinic: Any) -> None:
    patient = new_patient(clinic, reminder_channel="sms", phone="+447700900123")
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    [delivery] = reminders(patient)
    assert (delivery.channel, delivery.address) == ("sms", "+447700900123")


def test_missing_contact_raises_one_contact_missing_alert_instead_of_a_silent_skip(clinic: Any) -> None:
    patient = new_patient(clinic, reminder_channel="sms", phone="")
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    remind(utc(date(2027, 1, 5), 6))
    assert reminders(patient) == []
    [alert] = Alert.objects.filter(patient=patient, kind="contact_missing")
    assert alert.severity == "medium" and alert.status == "open"
    assert "phone" in alert.action_text

    Patient.objects.filter(pk=patient.pk).update(phone="+447700900123")
    remind(utc(date(2027, 1, 5), 7))
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert [d.dose.due_date for d in reminders(patient) if d.purpose == "dose_reminder"] == [date(2027, 1, 6)]


def test_a_dose_given_before_its_reminder_goes_out_cancels_it(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    [delivery] = reminders(patient)
    assert still_relevant(delivery) is True
    clock.move_to(utc(date(2027, 1, 3), 9))
    dose = ScheduledDose.objects.get(pk=delivery.dose_id)
    dose_record_administration(dose=dose, administered_at=utc(date(2027, 1, 3), 8, 30))  # came in early

    assert still_relevant(delivery) is False
    assert remind(utc(date(2027, 1, 3), 9))["reminders_cancelled"] == 1
    delivery.refresh_from_db()
    assert delivery.status == "cancelled" and "given" in delivery.last_error


def test_a_dose_not_given_gets_no_follow_up_and_its_replacement_is_reminded(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    clock.move_to(utc(date(2027, 1, 4), 12))
    first = ScheduledDose.objects.get(patient=patient, due_date=date(2027, 1, 4))
    dose_record_not_given(dose=first, reason="did not attend")
    replacement = ScheduledDose.objects.filter(patient=patient, status="planned").order_by("due_date").first()
    assert replacement is not None
    remind(utc(replacement.due_date - timedelta(days=1), 6))
    remind(utc(date(2027, 1, 5), 6))
    assert [d.purpose for d in reminders(patient)] == ["dose_reminder"]
    assert reminders(patient)[0].dose_id == replacement.pk


def test_an_overdue_dose_gets_one_follow_up_to_the_patient(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "ileal-resection")  # first dose 2027-01-04, not recorded
    for day in (date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 5), date(2027, 1, 6)):
        remind(utc(day, 6))
    follow_ups = [d for d in reminders(patient) if d.purpose == "dose_overdue"]
    assert len(follow_ups) == 1
    assert local(follow_ups[0]) == datetime(2027, 1, 5, 10, tzinfo=LONDON)
    assert "Monday 4 January 2027" in follow_ups[0].body
    assert clinical_words_in(follow_ups[0].body) == []
    assert not Alert.objects.filter(patient=patient, kind="dose_overdue").exists()  # staff: monitoring/sweep.py


def test_a_spanish_speaking_patient_gets_spanish_text(clinic: Any) -> None:
    patient = new_patient(clinic, language="es")
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    [delivery] = reminders(patient)
    assert delivery.language == "es"
    assert "Hola Jo" in delivery.body and "lunes 4 de enero de 2027" in delivery.body


def test_self_administered_oral_doses_get_no_reminders(clinic: Any) -> None:
    patient = new_patient(clinic, deficiency_cause="bariatric_surgery")
    start(patient, "bariatric-oral")
    remind(utc(date(2027, 1, 5), 6))
    assert [d for d in reminders(patient) if d.dose_id] == []


def test_the_sweep_query_count_does_not_grow_with_patients(clinic: Any) -> None:
    def queries_for(n: int, day: date) -> int:
        for _ in range(n):
            start(new_patient(clinic), "hydroxo-uk-standard", on=day)
        with CaptureQueriesContext(connection) as ctx:
            written = remind(utc(day - timedelta(days=1), 6))["reminders_written"]
        assert written == n
        return len(ctx.captured_queries)

    assert queries_for(1, date(2027, 1, 4)) == queries_for(6, date(2027, 2, 1))


def test_each_protocol_copy_is_read_once_per_run_however_many_regimens_share_it(clinic: Any) -> None:
    for _ in range(6):
        start(new_patient(clinic), "hydroxo-uk-standard")
    start(new_patient(clinic), "ileal-resection")
    with mock.patch.object(reminders_module, "maintenance_indexes", wraps=reminders_module.maintenance_indexes) as read:
        written = remind(utc(START - timedelta(days=1), 6))["reminders_written"]

    assert written == 7
    assert read.call_count == 2  # two distinct copies, not seven


def test_a_waiting_reminder_follows_a_changed_email_address(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 3), 6))
    Patient.objects.filter(pk=patient.pk).update(email="new@example.org")
    remind(utc(date(2027, 1, 3), 7))
    [delivery] = reminders(patient)
    assert (delivery.status, delivery.address) == ("pending", "new@example.org")


def test_a_dose_moved_to_another_day_gets_reminded_for_the_new_day_only(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "ileal-resection", on=date(2027, 1, 11))
    remind(utc(date(2027, 1, 4), 6))  # the 7-day reminder of Monday 11 January
    [old] = reminders(patient)
    # Re-planned (e.g. the clinic closes that day): same dose row, new date.
    ScheduledDose.objects.filter(pk=old.dose_id).update(due_date=date(2027, 1, 12))
    assert still_relevant(old) is False
    remind(utc(date(2027, 1, 5), 6))
    old.refresh_from_db()
    assert old.status == "cancelled" and "moved" in old.last_error
    [new] = [d for d in reminders(patient) if d.status == "pending"]
    assert local(new).date() == date(2027, 1, 5) and "Tuesday 12 January 2027" in new.body


def test_a_recheck_done_before_its_reminder_goes_out_cancels_it(clinic: Any) -> None:
    patient = new_patient(clinic)
    start(patient, "hydroxo-uk-standard")
    remind(utc(date(2027, 1, 13), 6))
    [delivery] = [d for d in reminders(patient) if d.recheck_id]
    assert "between Friday 15 January 2027 and" in delivery.body
    assert still_relevant(delivery) is True
    type(delivery.recheck).objects.filter(pk=delivery.recheck_id).update(status="done")
    assert still_relevant(delivery) is False
