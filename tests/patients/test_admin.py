"""The Django admin a clinic admin works in: every page opens, search, doses, history, scoping."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.http import Http404
from django.urls import reverse
from django.utils import formats

from notifications.alerts import alert_raise
from notifications.models import Alert
from patients.models import ClinicMembership, Patient, Role
from regimens import services
from regimens.models import LabRecheck, Protocol, Regimen, ReplanJob, ScheduledDose
from tests.conftest import admin_request, assert_admin_refused
from tests.factories import PatientFactory, UserFactory
from tracker.clock import patient_today

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def regimen(patient: Patient, clinic: Any) -> Regimen:
    """A hydroxo-uk-standard regimen with its first dose given, an alert and planned rechecks."""
    today = patient_today(patient)
    started = services.regimen_start(
        patient=patient,
        protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
        start_date=today - timedelta(days=10),
    )
    first = started.doses.order_by("due_date").first()
    assert first is not None
    services.dose_record_administration(
        dose=first,
        administered_at=datetime.combine(first.due_date, time(10, 30), tzinfo=ZoneInfo(patient.timezone)),
        lot_number="HX12345A",
        expiry_date=first.due_date + timedelta(days=300),
        site="left deltoid",
    )
    alert_raise(patient=patient, kind="dose_overdue", severity="medium", message="Dose overdue", rule_id="S-4")
    return started


def admin_url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_it_opens_the_list_and_change_page_of_every_registered_model(admin_client, regimen, model, model_admin):
    response = admin_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200

    obj = model._default_manager.first()
    if obj is not None:
        response = admin_client.get(admin_url(model, "change", obj.pk))
        assert response.status_code == 200
        response = admin_client.get(admin_url(model, "history", obj.pk))
        assert response.status_code == 200


def test_it_has_a_row_of_every_clinical_model_to_show(regimen):
    # Guards the test above: the pages it opens are not just empty lists.
    for model in (Patient, Regimen, ScheduledDose, LabRecheck, Protocol):
        assert model.objects.exists(), model


def test_it_finds_a_patient_by_mrn(admin_client, clinic):
    wanted = PatientFactory(clinic=clinic, mrn="RVH777001", family_name="Wanted")
    PatientFactory(clinic=clinic, mrn="RVH888002", family_name="Other")

    response = admin_client.get(admin_url(Patient, "changelist"), {"q": "RVH777001"})

    content = response.content.decode()
    assert wanted.family_name in content
    assert "RVH888002" not in content


def test_it_shows_the_doses_of_a_regimen_on_its_page(admin_client, regimen):
    response = admin_client.get(admin_url(Regimen, "change", regimen.pk))

    content = response.content.decode()
    assert "HX12345A" in content  # the given dose's lot number
    assert "left deltoid" in content
    planned = regimen.doses.filter(status="planned").order_by("due_date").first()
    assert planned is not None
    assert formats.date_format(planned.due_date) in content
    assert "Planned" in content


@pytest.mark.parametrize("model", [ScheduledDose, LabRecheck, Regimen, Alert, Patient])
def test_it_lists_rows_without_a_query_per_row(admin_client, regimen, django_assert_max_num_queries, model):
    # The regimen has over a dozen doses and rechecks; a query per row would blow this bound.
    assert model.objects.count() >= 1
    with django_assert_max_num_queries(12):
        admin_client.get(admin_url(model, "changelist"))


def test_it_shows_who_changed_what_on_the_patient_history_page(admin_client, admin_user, clinic):
    patient = PatientFactory(clinic=clinic, phone="+447700900111")
    data = {
        "clinic": clinic.pk,
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "deficiency_cause": patient.deficiency_cause,
        "email": patient.email,
        "phone": "+447700900999",
        "timezone": patient.timezone,
        "language": "en",
        "reminder_channel": "sms",
        "user": "",
        "regimens-TOTAL_FORMS": "0",
        "regimens-INITIAL_FORMS": "0",
        "regimens-MIN_NUM_FORMS": "0",
        "regimens-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }

    response = admin_client.post(admin_url(Patient, "change", patient.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]

    history = admin_client.get(admin_url(Patient, "history", patient.pk)).content.decode()
    assert "+447700900111" in history  # before
    assert "+447700900999" in history  # after
    assert admin_user.username in history  # who


def test_it_shows_a_clinic_admin_only_the_patients_of_their_own_clinic(client, clinic, other_clinic):
    clinic_admin = UserFactory(username="clinic-admin", is_staff=True)
    ClinicMembership.objects.create(user=clinic_admin, clinic=clinic, role=Role.ADMIN)
    clinic_admin.user_permissions.add(*Permission.objects.filter(codename__in=["view_patient", "change_patient"]))
    PatientFactory(clinic=clinic, mrn="RVH000111")
    hidden = PatientFactory(clinic=other_clinic, mrn="HTS000222")
    client.force_login(clinic_admin)

    # The admin is the superusers' tool: a clinic admin is pointed to the web app, on every admin page.
    assert_admin_refused(client.get(admin_url(Patient, "changelist")))
    assert_admin_refused(client.get(admin_url(Patient, "change", hidden.pk)))
    # Its clinic scoping stays (a superuser sees every clinic): the same user would see only their clinic.
    scoped = admin.site._registry[Patient].get_queryset(admin_request(clinic_admin))
    assert set(scoped.values_list("mrn", flat=True)) == {"RVH000111"}


def closed_date_form(clinic: Any, day: Any) -> dict[str, Any]:
    """The admin's clinic change form, adding the closed date `day`."""
    return {
        "name": clinic.name,
        "timezone": clinic.timezone,
        "open_weekdays": [str(d) for d in clinic.open_weekdays],
        "phone": "",
        "email": "",
        "lead": "",
        "closed_dates-TOTAL_FORMS": "1",
        "closed_dates-INITIAL_FORMS": "0",
        "closed_dates-MIN_NUM_FORMS": "0",
        "closed_dates-MAX_NUM_FORMS": "1000",
        "closed_dates-0-date": day.isoformat(),
        "closed_dates-0-note": "Staff training day",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }


def test_it_replans_doses_when_a_closed_date_is_added_in_the_admin(admin_client, clinic, regimen):
    # RULES §10 V-11: a calendar change moves only doses due today or later (an overdue one keeps its date).
    today = patient_today(regimen.patient)
    planned = regimen.doses.filter(status="planned", due_date__gte=today).order_by("due_date").first()
    assert planned is not None

    form = closed_date_form(clinic, planned.due_date)
    response = admin_client.post(admin_url(type(clinic), "change", clinic.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]

    planned.refresh_from_db()
    assert planned.status == "planned"
    assert planned.due_date not in set(clinic.closed_dates.values_list("date", flat=True))


def test_a_large_calendar_change_in_the_admin_says_where_its_job_shows_its_progress(
    admin_client, clinic, regimen, settings
):
    settings.COBALT = {**settings.COBALT, "CALENDAR_SYNC_MAX_REGIMENS": 0}  # every clinic is "large"
    planned = regimen.doses.filter(status="planned").order_by("-due_date").first()

    response = admin_client.post(
        admin_url(type(clinic), "change", clinic.pk), closed_date_form(clinic, planned.due_date), follow=True
    )

    job = ReplanJob.objects.get(clinic=clinic)
    assert f"/calendar/replan/{job.pk}/" in response.content.decode()
    planned.refresh_from_db()
    assert planned.due_date in set(clinic.closed_dates.values_list("date", flat=True))  # until the job runs


def test_it_says_in_words_how_long_a_dose_has_been_overdue(admin_client, clinic):
    # Given a monthly regimen started 40 days ago whose first dose was never recorded
    patient = PatientFactory(clinic=clinic, mrn="RVH-LATE")
    today = patient_today(patient)
    regimen = services.regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="ileal-resection"), start_date=today - timedelta(days=40)
    )
    first = regimen.doses.order_by("due_date").first()
    late_by = (today - first.due_date).days

    # When a clinic admin opens the dose list
    response = admin_client.get(admin_url(ScheduledDose, "changelist") + "?q=RVH-LATE")

    # Then the first dose says how late it is
    assert f"overdue by {late_by} days" in response.content.decode()


# --- History pages are scoped like the change pages ----------------------------------------------


@pytest.fixture
def other_clinic_admin(client: Any, other_clinic: Any) -> Any:
    """A clinic admin of ANOTHER clinic, with every admin permission a clinic admin is given."""
    user = UserFactory(username="other-admin", is_staff=True)
    ClinicMembership.objects.create(user=user, clinic=other_clinic, role=Role.ADMIN)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["patients", "notifications"]))
    client.force_login(user)
    return user


def test_it_hides_another_clinics_patient_history_from_a_clinic_admin(client, clinic, other_clinic_admin):
    patient = PatientFactory(clinic=clinic, mrn="RVH000333", phone="+447700900111")
    version = patient.history.latest()

    assert_admin_refused(client.get(admin_url(Patient, "history", patient.pk)))
    page = client.get(admin_url(Patient, "history", patient.pk) + f"{version.history_id}/")
    assert_admin_refused(page)
    assert b"+447700900111" not in page.content
    # The history view's own scoping stays: another clinic's patient is not found.
    with pytest.raises(Http404):
        admin.site._registry[Patient].history_view(admin_request(other_clinic_admin), str(patient.pk))


def test_it_refuses_a_revert_of_another_clinics_patient(client, clinic, other_clinic, other_clinic_admin):
    patient = PatientFactory(clinic=clinic, mrn="RVH000444")
    version = patient.history.latest()

    response = client.post(
        admin_url(Patient, "history", patient.pk) + f"{version.history_id}/",
        {"clinic": other_clinic.pk, "mrn": "RVH000444", "given_name": "A", "family_name": "B"},
    )

    assert_admin_refused(response)
    patient.refresh_from_db()
    assert patient.clinic_id == clinic.pk  # not moved into the attacker's clinic


def test_it_refuses_a_revert_on_a_read_only_admin_page(admin_client, regimen):
    alert = Alert.objects.get(kind="dose_overdue")
    version = alert.history.latest()
    alert_ack = {"status": "acknowledged"}
    Alert.objects.filter(pk=alert.pk).update(**alert_ack)

    response = admin_client.post(admin_url(Alert, "history", alert.pk) + f"{version.history_id}/", {"status": "open"})

    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "acknowledged"


def test_a_clinic_admin_is_sent_to_the_web_app_and_a_superuser_reads_the_history(client, admin_client, clinic):
    user = UserFactory(username="own-admin", is_staff=True)
    ClinicMembership.objects.create(user=user, clinic=clinic, role=Role.ADMIN)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_patient", "change_patient"]))
    client.force_login(user)
    patient = PatientFactory(clinic=clinic, mrn="RVH000555")

    assert_admin_refused(client.get(admin_url(Patient, "history", patient.pk)))
    assert_admin_refused(client.get("/admin/"))
    assert admin_client.get(admin_url(Patient, "history", patient.pk)).status_code == 200
