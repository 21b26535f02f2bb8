"""The lab trends page in the admin: a chart per analyte with its band, and the PLASMIC summary."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from patients.models import ClinicMembership, LabResult, Patient, Role
from tests.conftest import assert_admin_refused
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def hb(patient: Patient, value: str, day: int, interpretation: str) -> None:
    LabResult.objects.create(
        patient=patient,
        analyte="hemoglobin",
        loinc="718-7",
        value_as_entered=value,
        unit_as_entered="g/L",
        value_canonical=Decimal(value),
        unit_canonical="g/L",
        interpretation=interpretation,
        collected_at=datetime(2027, 1, day, 9, tzinfo=UTC),
    )


def test_it_draws_a_chart_per_analyte_with_the_reference_band(admin_client: Any, patient: Patient) -> None:
    hb(patient, "85", 4, "low")
    hb(patient, "125", 25, "normal")
    change = admin_client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()
    assert "../trends/" in change
    page = admin_client.get(f"/admin/patients/patient/{patient.pk}/trends/").content.decode()
    assert 'id="trend-hemoglobin"' in page
    assert page.count('class="point"') == 2
    assert 'class="band"' in page and "120-160" in page
    assert "#b35c00" in page and "#1b7f3b" in page  # low point and normal point coloured differently
    assert "Incomplete" in page  # PLASMIC without inputs


def test_a_clinic_admin_cannot_open_another_clinics_patient(client: Any, clinic: Any, other_clinic: Any) -> None:
    clinic_admin = UserFactory(username="clinic-admin", is_staff=True)
    ClinicMembership.objects.create(user=clinic_admin, clinic=clinic, role=Role.ADMIN)
    clinic_admin.user_permissions.add(*Permission.objects.filter(codename="view_patient"))
    hidden = PatientFactory(clinic=other_clinic)
    client.force_login(clinic_admin)
    # The admin is the superusers' tool: a clinic admin is pointed to the web app, nothing of the patient shown.
    response = client.get(f"/admin/patients/patient/{hidden.pk}/trends/")
    assert_admin_refused(response)
    assert hidden.family_name.encode() not in response.content
