"""`manage.py seed_demo`: a believable demo built only through the regimen services. The 40-patient demo is seeded
once for this module's tests; the smaller seeds are in test_seed_demo_sizes.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from monitoring.evaluation import evaluate_patient
from patients.models import Clinic, ClinicMembership, Patient
from regimens.models import Protocol, Regimen, RegimenDecision, ScheduledDose
from regimens.selectors import worklist

pytestmark = pytest.mark.django_db


def seed(patients: int = 40) -> str:
    out = StringIO()
    call_command("seed_demo", "--patients", str(patients), "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """The 40-patient demo, seeded once for the tests that only read it (each seed takes ten seconds); rolled
    back after them. What it printed."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed()
        transaction.set_rollback(True)


def counts() -> dict[str, int]:
    user_model = get_user_model()
    return {
        "clinics": Clinic.objects.count(),
        "users": user_model.objects.count(),
        "memberships": ClinicMembership.objects.count(),
        "patients": Patient.objects.count(),
        "regimens": Regimen.objects.count(),
        "doses": ScheduledDose.objects.count(),
        "decisions": RegimenDecision.objects.count(),
    }


def test_it_creates_two_staffed_clinics_and_forty_patients_on_all_ten_protocols(demo: str) -> None:
    clinics = Clinic.objects.order_by("name")
    assert [c.name for c in clinics] == ["Northgate Medical Centre", "Riverside Haematology"]
    riverside = Clinic.objects.get(name="Riverside Haematology")
    assert riverside.open_weekdays == [0, 1, 2, 3, 4]
    assert riverside.closed_dates.exists()  # bank holidays
    for clinic in clinics:
        assert clinic.lead is not None
        roles = set(ClinicMembership.objects.filter(clinic=clinic).values_list("role", flat=True))
        assert roles == {"nurse", "clinician", "admin"}
    assert get_user_model().objects.get(username="admin").is_superuser

    assert Patient.objects.count() == 40
    assert Patient.objects.filter(clinic__name="Northgate Medical Centre").exists()
    used = set(Regimen.objects.values_list("protocol__code", flat=True))
    assert used == set(Protocol.objects.filter(is_builtin=True).values_list("code", flat=True))
    assert len(used) == 10
    today = timezone.localdate()
    assert all(p.age_on(today) >= 16 for p in Patient.objects.all())
    assert set(Patient.objects.values_list("reminder_channel", flat=True)) >= {"email", "sms", "none"}
    assert not Patient.objects.exclude(email="").exclude(email__endswith="@example.org").exists()


def test_two_demo_patients_read_spanish_on_their_card_and_reminders(demo: str) -> None:
    spanish = list(Patient.objects.filter(language="es").order_by("id"))
    assert len(spanish) == 2
    assert {p.timezone for p in spanish} == {"America/New_York"}
    assert {p.reminder_channel for p in spanish} == {"email", "sms"}  # one of each, to see both messages
    browser = Client()
    browser.force_login(get_user_model().objects.get(username="riverside-nurse"))
    card = browser.get(f"/patients/{spanish[0].pk}/card/").content.decode()
    assert 'lang="es"' in card and "Sus próximas citas" in card


def test_it_shows_patients_at_every_stage_with_late_and_missed_doses(demo: str) -> None:
    today = timezone.localdate()

    overdue = ScheduledDose.objects.filter(status="planned", due_date__lt=today)
    assert overdue.count() >= 3
    assert overdue.values("patient").distinct().count() >= 5  # late patients on several protocols
    reasons = set(ScheduledDose.objects.filter(status="not_given").values_list("not_given_reason", flat=True))
    assert {"did not attend", "patient refused", "held: clinician decision"} <= reasons
    given_im = ScheduledDose.objects.filter(status="given", self_administered=False)
    assert given_im.exists()
    assert not given_im.filter(lot_number="").exists()
    assert not given_im.filter(expiry_date__isnull=True).exists()
    assert not given_im.filter(site="").exists()
    assert not ScheduledDose.objects.filter(status="given", administered_at__gt=timezone.now()).exists()

    # The special stages of the brief, each as the product would show it.
    assert Regimen.objects.filter(protocol__code="cyano-us-label", awaiting_gate=True, doses__status="given").exists()
    assert RegimenDecision.objects.filter(regimen__protocol__code="cyano-us-label", kind="confirm_gate").exists()
    ended = RegimenDecision.objects.get(regimen__protocol__code="hydroxo-uk-neuro", kind="end_phase").regimen
    assert ended.current_phase == 1
    assert ended.patient.neurological_involvement
    assert Regimen.objects.filter(options__enrol__phase="maintenance").exists()
    assert Regimen.objects.filter(status="stopped").exclude(stop_reason="").exists()
    assert Regimen.objects.filter(status="completed").exists()
    # RULES R-UK-4: a maintenance patient whose clinician shortened the interval to 8 weeks today.
    shortened = RegimenDecision.objects.get(regimen__protocol__code="hydroxo-uk-standard", kind="interval_shortened")
    assert shortened.regimen.options["phases"]["maintenance"]["spacing_value"] == 8
    assert "every 12 weeks → every 8 weeks" in shortened.note
    # Just started: the patient's "today" may be a day off the server's in another time zone.
    assert Regimen.objects.filter(start_date__gte=today - timedelta(days=1)).exists()

    # The first demo login's worklist is never empty, whatever the weekday (doses overdue at the clinic).
    riverside = Clinic.objects.get(name="Riverside Haematology")
    assert len(worklist(clinic_ids=[riverside.pk]).doses) >= 3


def test_it_creates_nothing_new_when_run_twice_and_prints_the_logins(demo: str) -> None:
    first = demo
    before = counts()

    second = seed()

    assert counts() == before
    for output in (first, second):
        assert "riverside-nurse" in output
        assert "northgate-clinician" in output
        assert "cobalt-demo" in output
        assert "admin" in output
        assert "Summary: 40 patients, 40 regimens" in output
    assert "already there: 40" in second


def test_one_evaluation_of_each_demo_patient_leaves_nothing_for_a_second_to_do(demo: str) -> None:
    """The monitoring evaluation reaches its end state in one run (it says it is idempotent): after it, a second run
    of every demo patient, on the same rows at the same moment, raises, updates, resolves, completes and re-plans
    nothing. A first run that left work for the next (a recheck its own re-plan added, already answered by the
    results) would show here. The demo's own evaluations run after its commits, which a test never reaches."""
    now = timezone.now()
    for patient in Patient.objects.order_by("id"):
        evaluate_patient(patient.pk, at=now)
    second = {}
    for patient in Patient.objects.order_by("id"):
        summary = evaluate_patient(patient.pk, at=now)
        left = {key: value for key, value in summary.items() if value}
        if left:
            second[patient.mrn] = left
    assert second == {}
