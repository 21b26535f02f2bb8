"""Issue 12, "done when": a clinic admin of another clinic, given every admin permission of the clinical apps,
reads and changes nothing of this clinic's through any admin page (change, history, history form, delete)
or any API detail route."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from notifications.models import Alert, Delivery
from patients.models import ClinicMembership, LabResult, Medication, Patient, PatientFact, Role
from regimens import services
from regimens.models import LabRecheck, Protocol, Regimen, Replan, ScheduledDose
from tests.conftest import client_for
from tests.factories import (
    AlertFactory,
    DeliveryFactory,
    LabResultFactory,
    MedicationFactory,
    PatientFactFactory,
    PatientFactory,
    UserFactory,
    staff_user,
)
from tracker.clock import patient_today

pytestmark = pytest.mark.django_db

SECRET_MRN = "SECRET-MRN-4711"


@pytest.fixture
def theirs(clinic: Any) -> dict[type[Model], Model]:
    """One row of every clinical model in `clinic` (the clinic the intruder does not work in)."""
    patient = PatientFactory(clinic=clinic, mrn=SECRET_MRN, phone="+447700900777")
    regimen = services.regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
        start_date=patient_today(patient) + timedelta(days=1),
    )  # fmt: skip
    services.regimen_stop(regimen=regimen, reason="stopped for the walk test", acknowledge=["lifelong_therapy_stopped"])
    alert = AlertFactory(patient=patient)
    # The clinic's own copy of a shared protocol (issue 12): theirs alone, unlike the shared ones.
    own_protocol = services.protocol_copy(
        protocol=Protocol.objects.get(code="hydroxo-uk-standard"), clinic=clinic,
        by=staff_user(clinic, Role.ADMIN, username="their-admin"),
    )  # fmt: skip
    return {
        type(clinic): clinic,
        Patient: patient,
        LabResult: LabResultFactory(patient=patient),
        Medication: MedicationFactory(patient=patient),
        PatientFact: PatientFactFactory(patient=patient),
        Regimen: regimen,
        ScheduledDose: regimen.doses.first(),
        LabRecheck: regimen.lab_rechecks.first(),
        Alert: alert,
        Delivery: DeliveryFactory(patient=patient, alert=alert),
        Replan: Replan.objects.get(regimen=regimen),
        Protocol: own_protocol,
    }


@pytest.fixture
def intruder(other_clinic: Any) -> Any:
    user = UserFactory(username="intruder", is_staff=True)
    ClinicMembership.objects.create(user=user, clinic=other_clinic, role=Role.ADMIN)
    apps = ["patients", "regimens", "notifications"]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=apps))
    return user


def url(obj: Model, view: str, *extra: Any) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[obj.pk, *extra])


def test_every_admin_page_of_another_clinics_rows_is_closed(theirs: dict[type[Model], Model], intruder: Any) -> None:
    client = Client()
    client.force_login(intruder)
    clinical = {model for model in admin.site._registry if model._meta.app_label in ("patients", "regimens")}
    clinical |= {model for model in admin.site._registry if model._meta.app_label == "notifications"}
    # The shared protocols are readable by all (test_protocols_superuser_only.py); the walk holds the clinic's copy.
    assert clinical <= set(theirs), f"add a row of {clinical - set(theirs)} to the walk"
    for model, obj in theirs.items():
        pages = [url(obj, "change"), url(obj, "delete")]
        history = getattr(obj, "history", None)
        if history is not None:
            pages.append(url(obj, "history"))
            version = history.order_by("-history_id").first()
            if version is not None:  # doses are written in bulk, without history rows
                pages.append(url(obj, "simple_history", version.history_id))
        for page in pages:
            response = client.get(page)
            assert response.status_code in (302, 403, 404), (model.__name__, page, response.status_code)
            assert SECRET_MRN.encode() not in response.content, page
            posted = client.post(page, {"post": "yes", "clinic": intruder.memberships.get().clinic_id})
            assert posted.status_code in (302, 403, 404), (model.__name__, page, posted.status_code)
        assert model._default_manager.filter(pk=obj.pk).exists(), model.__name__
        listing = client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
        assert SECRET_MRN.encode() not in listing.content, model.__name__
    patient = Patient.objects.get(mrn=SECRET_MRN)
    assert patient.clinic_id == theirs[type(theirs[Patient].clinic)].pk  # type: ignore[attr-defined]


API_DETAIL = {
    Patient: "/api/patients/{}/",
    LabResult: "/api/lab-results/{}/",
    Medication: "/api/medications/{}/",
    PatientFact: "/api/patient-facts/{}/",
    Regimen: "/api/regimens/{}/",
    ScheduledDose: "/api/doses/{}/",
    LabRecheck: "/api/lab-rechecks/{}/",
    Alert: "/api/alerts/{}/",
    Protocol: "/api/protocols/{}/",
}
API_PATIENT_ROUTES = ["/api/patients/{}/plasmic/", "/api/patients/{}/trends/", "/api/patients/{}/b12-status/",
                      "/api/patients/{}/prompts/"]  # fmt: skip


def test_every_api_detail_route_of_another_clinics_rows_is_a_404(
    theirs: dict[type[Model], Model], intruder: Any
) -> None:
    api: APIClient = client_for(intruder)
    routes = [route.format(theirs[model].pk) for model, route in API_DETAIL.items()]
    routes += [route.format(theirs[Patient].pk) for route in API_PATIENT_ROUTES]
    routes.append(f"/api/clinics/{theirs[type(theirs[Patient].clinic)].pk}/")  # type: ignore[attr-defined]
    own_protocol: Any = theirs[Protocol]
    routes.append(f"/api/protocols/{own_protocol.code}/")
    for route in routes:
        response = api.get(route)
        assert response.status_code == 404, (route, response.status_code)
        assert SECRET_MRN not in response.content.decode()
        for method in ("patch", "post"):
            changed = getattr(api, method)(route, {"stop_date": "2027-01-01"})
            assert changed.status_code in (404, 405), (method, route, changed.status_code)
    # The copy's actions (a clinic admin's, as the intruder is) answer as for a protocol that does not exist.
    for ref in (own_protocol.pk, own_protocol.code):
        assert api.post(f"/api/protocols/{ref}/copy/").status_code == 404
        assert api.post(f"/api/protocols/{ref}/retire/").status_code == 404
        assert api.patch(f"/api/protocols/{ref}/phases/maintenance/", {"spacing_value": 8}).status_code == 404
    assert own_protocol.code not in api.get("/api/protocols/", {"page_size": 100}).content.decode()
    own_protocol.refresh_from_db()
    assert own_protocol.active and own_protocol.phases.get(key="maintenance").spacing_value == 12
    for route in ["/api/patients/", "/api/lab-results/", "/api/regimens/", "/api/doses/", "/api/alerts/",
                  "/api/notifications/", "/api/medications/", "/api/patient-facts/", "/api/lab-rechecks/"]:  # fmt: skip
        assert SECRET_MRN not in api.get(route).content.decode(), route
        assert api.get(route).json()["count"] == 0, route
