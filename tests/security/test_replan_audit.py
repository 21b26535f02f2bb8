"""Issue 12: bulk dose changes are audited, one row per re-plan with its cause."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from rest_framework.test import APIClient

from regimens import services
from regimens.models import DoseStatus, Protocol, Replan
from tests.conftest import admin_request, assert_admin_refused
from tracker.clock import patient_today

pytestmark = pytest.mark.django_db


def start(patient: Any) -> Any:
    today = patient_today(patient)
    return services.regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=today + timedelta(days=1)
    )


def test_a_calendar_change_is_one_audited_replan_naming_its_cause(
    admin_api: APIClient, patient: Any, clinic: Any, clinic_admin: Any
) -> None:
    regimen = start(patient)
    assert not Replan.objects.exists()  # a new regimen's plan is its first, not a change
    planned = {d.pk: d.due_date for d in regimen.doses.filter(status=DoseStatus.PLANNED)}
    response = admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [1, 2, 3]})
    assert response.status_code == 200, response.json()
    [replan] = Replan.objects.filter(regimen=regimen)
    assert replan.cause == f"clinic calendar changed ({clinic.name})"
    assert replan.user == clinic_admin
    moved = {m["dose"]: m for m in replan.moved}
    assert moved, "the doses on closed weekdays moved"
    for dose in regimen.doses.filter(pk__in=moved):
        assert moved[dose.pk]["from"] == planned[dose.pk].isoformat()
        assert moved[dose.pk]["to"] == dose.due_date.isoformat()


def test_stopping_a_regimen_audits_the_cancelled_doses(
    clinician_api: APIClient, patient: Any, clinician: Any
) -> None:
    regimen = start(patient)
    planned = sorted(regimen.doses.filter(status=DoseStatus.PLANNED).values_list("pk", flat=True))
    body = {"reason": "moved to another area", "acknowledge": ["lifelong_therapy_stopped"]}
    response = clinician_api.post(f"/api/regimens/{regimen.pk}/stop/", body)
    assert response.status_code == 200, response.json()
    [replan] = Replan.objects.filter(regimen=regimen)
    assert replan.cause == "regimen stopped: moved to another area"
    assert replan.cancelled == planned
    assert replan.user == clinician


def test_the_audit_is_read_only_and_clinic_scoped_in_the_admin(
    admin_client: Any, patient: Any, other_patient: Any
) -> None:
    from django.contrib.auth.models import Permission
    from django.test import Client

    from patients.models import ClinicMembership, Role
    from tests.factories import UserFactory

    for who in (patient, other_patient):
        services.regimen_stop(regimen=start(who), reason="audit test", acknowledge=["lifelong_therapy_stopped"])
    theirs = Replan.objects.get(patient=other_patient)
    user = UserFactory(username="replan-admin", is_staff=True)
    ClinicMembership.objects.create(user=user, clinic=patient.clinic, role=Role.ADMIN)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_replan", "change_replan"]))
    client = Client()
    client.force_login(user)
    # The admin is the superusers' tool: a clinic admin is pointed to the web app (they read re-plans in /audit/).
    assert_admin_refused(client.get("/admin/regimens/replan/"))
    assert_admin_refused(client.get(f"/admin/regimens/replan/{theirs.pk}/change/"))
    # The admin's clinic scoping stays: the same user would see only their clinic's re-plan.
    scoped = admin.site._registry[Replan].get_queryset(admin_request(user))
    assert list(scoped.values_list("patient_id", flat=True)) == [patient.pk]
    assert admin_client.get(f"/admin/regimens/replan/{theirs.pk}/change/").status_code == 200
