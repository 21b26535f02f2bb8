"""The Django admin says Cobalt and shows times on the clinic's clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from patients.models import ClinicMembership, Role
from tests.factories import AlertFactory, PatientFactory

pytestmark = pytest.mark.django_db


def test_it_is_branded_cobalt(admin_client: Any) -> None:
    html = admin_client.get("/admin/").content.decode()
    assert "Cobalt administration" in html and "Django administration" not in html


def test_it_shows_times_in_the_clinic_zone(admin_client: Any, admin_user: Any, clinic: Any) -> None:
    clinic.timezone = "Pacific/Auckland"
    clinic.save()
    ClinicMembership.objects.create(user=admin_user, clinic=clinic, role=Role.ADMIN)
    alert = AlertFactory(patient=PatientFactory(clinic=clinic), opened_at=datetime(2027, 1, 3, 23, 30, tzinfo=UTC))
    html = admin_client.get("/admin/notifications/alert/").content.decode()
    assert alert.opened_at.hour == 23
    # 23:30 UTC on 3 January is 12:30 on 4 January in Auckland (NZDT, UTC+13).
    assert "opened_at__day=4&amp;opened_at__month=1" in html  # the date hierarchy's day
    assert "12:30" in html and "23:30" not in html


def test_a_superuser_of_no_clinic_sees_the_zone_every_clinic_shares(
    admin_client: Any, clinic: Any, other_clinic: Any
) -> None:
    for each in (clinic, other_clinic):
        each.timezone = "Pacific/Auckland"
        each.save()
    AlertFactory(patient=PatientFactory(clinic=clinic), opened_at=datetime(2027, 1, 3, 23, 30, tzinfo=UTC))
    html = admin_client.get("/admin/notifications/alert/").content.decode()
    assert "12:30" in html and "23:30" not in html
    assert "opened_at__day=4&amp;opened_at__month=1" in html

    other_clinic.timezone = "Europe/London"  # no zone is shared: times stay in UTC
    other_clinic.save()
    html = admin_client.get("/admin/notifications/alert/").content.decode()
    assert "12:30" not in html
    assert "opened_at__day=3&amp;opened_at__month=1" in html  # 3 January, as UTC reads it
