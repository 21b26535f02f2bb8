"""The dose list (`GET /api/doses/`, the worklist) renders its rows with regimens.serializers.dose_rows (issue 16): the
same JSON, byte for byte, as DoseSerializer, which still documents the list and renders the detail, the actions and
?warnings=true."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from patients.models import Clinic
from regimens.models import DoseStatus, Regimen, ScheduledDose
from regimens.serializers import DoseSerializer
from tests.factories import PatientFactory, RegimenFactory, UserFactory

pytestmark = pytest.mark.django_db

# 11:30 UTC on 20 January 2027: already 00:30 on the 21st in Auckland (UTC+13), the 20th in London.
NOW = datetime(2027, 1, 20, 11, 30, tzinfo=UTC)
TODAY = date(2027, 1, 20)


def add(regimen: Regimen, sequence: int, due: date, **fields: Any) -> ScheduledDose:
    values: dict[str, Any] = {
        "regimen": regimen,
        "patient": regimen.patient,
        "phase_index": 0,
        "phase": "loading",
        "sequence": sequence,
        "due_date": due,
        "drug": "hydroxocobalamin",
        "dose_mcg": 1000,
        "route": "IM",
        **fields,
    }
    return ScheduledDose.objects.create(**values)


def every_kind_of_dose(clinic: Clinic) -> None:
    """Doses in every status and with every optional field set and empty, for a patient in London and one in
    Auckland (a day ahead at NOW)."""
    london = RegimenFactory(patient=PatientFactory(clinic=clinic, timezone="Europe/London"))
    auckland = RegimenFactory(patient=PatientFactory(clinic=clinic, timezone="Pacific/Auckland"))
    recorder = UserFactory()
    given_at = datetime(2027, 1, 18, 10, 30, 15, 123456, tzinfo=UTC)
    add(london, 1, TODAY - timedelta(days=3), appointment_time=time(9, 30))  # planned, overdue
    add(london, 2, TODAY, appointment_time=time(14, 5))  # planned, due today: not overdue
    add(london, 3, TODAY + timedelta(days=2), dose_unit="mg", dose_mcg=1000)  # 1 mg
    add(london, 4, TODAY + timedelta(days=4), dose_unit="mg", dose_mcg=1500)  # 1.5 mg
    add(
        london, 5, TODAY - timedelta(days=2), status=DoseStatus.GIVEN, administered_at=given_at,
        administered_by=recorder, lot_number="LOT-42", expiry_date=date(2028, 3, 31), site="left deltoid",
        given_route="IM", recorded_at=given_at + timedelta(minutes=3), acknowledged_warnings=["low_platelets"],
    )  # fmt: skip
    add(
        london, 6, TODAY - timedelta(days=1), status=DoseStatus.NOT_GIVEN, not_given_reason="Did not attend",
        not_given_on=TODAY - timedelta(days=1), recorded_at=datetime(2027, 1, 19, 16, 0, tzinfo=UTC),
    )  # fmt: skip
    add(
        london, 7, TODAY - timedelta(days=5), status=DoseStatus.ENTERED_IN_ERROR, administered_at=given_at,
        lot_number="LOT-1", error_reason="Recorded on the wrong patient", error_recorded_by=recorder,
        error_recorded_at=datetime(2027, 1, 19, 8, 15, tzinfo=UTC),
    )  # fmt: skip
    add(london, 8, TODAY + timedelta(days=6), drug="cyanocobalamin", route="PO", self_administered=True)
    add(auckland, 1, TODAY, appointment_time=time(8, 0))  # due "today" in London, yesterday in Auckland: overdue
    add(auckland, 2, TODAY + timedelta(days=1))  # today in Auckland: not overdue


def as_the_serializer_renders(doses: Any, count: int, **links: str | None) -> bytes:
    """The list's page as it was rendered before issue 16: DoseSerializer over the page's model instances."""
    data = DoseSerializer(doses, many=True).data
    return JSONRenderer().render(
        {"count": count, "next": links.get("next"), "previous": links.get("previous"), "results": data}
    )


@time_machine.travel(NOW, tick=False)
def test_the_list_is_byte_for_byte_what_the_dose_serializer_renders(api: APIClient, clinic: Clinic) -> None:
    every_kind_of_dose(clinic)
    doses = ScheduledDose.objects.order_by("due_date", "id")

    response = api.get(f"/api/doses/?clinic={clinic.pk}")

    assert response.status_code == 200
    assert response.content == as_the_serializer_renders(doses, 10)
    rows = {(row["patient"], row["sequence"]): row for row in response.json()["results"]}
    assert [row["overdue"] for row in response.json()["results"]].count(True) == 2
    london, auckland = sorted({patient for patient, _ in rows})
    assert rows[(london, 1)]["overdue"] and rows[(auckland, 1)]["overdue"]
    assert not rows[(london, 2)]["overdue"] and not rows[(auckland, 2)]["overdue"]
    assert (rows[(london, 1)]["appointment_time"], rows[(london, 3)]["appointment_time"]) == ("09:30", None)
    assert (rows[(london, 3)]["dose_amount"], rows[(london, 4)]["dose_amount"]) == (1, 1.5)
    assert rows[(london, 5)]["administered_at"] == "2027-01-18T10:30:15.123456Z"
    assert rows[(london, 7)]["error_reason"] == "Recorded on the wrong patient"
    assert rows[(london, 8)]["self_administered"] is True


@time_machine.travel(NOW, tick=False)
def test_ordering_and_pages_are_those_of_the_serializer(api: APIClient, clinic: Clinic) -> None:
    every_kind_of_dose(clinic)
    link = f"http://testserver/api/doses/?clinic={clinic.pk}&ordering=-due_date"  # DRF sorts the parameters
    doses = ScheduledDose.objects.order_by("-due_date", "-id")

    second = api.get(f"/api/doses/?clinic={clinic.pk}&ordering=-due_date&page_size=3&page=2")
    last = api.get(f"/api/doses/?clinic={clinic.pk}&ordering=-due_date&page_size=3&page=4")
    overdue = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=true")

    assert second.content == as_the_serializer_renders(
        doses[3:6], 10, next=f"{link}&page=3&page_size=3", previous=f"{link}&page_size=3"
    )
    assert last.content == as_the_serializer_renders(doses[9:], 10, previous=f"{link}&page=3&page_size=3")
    planned = ScheduledDose.objects.filter(status=DoseStatus.PLANNED).select_related("patient")
    late = [d for d in planned if d.due_date < (TODAY + timedelta(days=d.patient.timezone == "Pacific/Auckland"))]
    assert len(late) == 2 and overdue.content == as_the_serializer_renders(late, 2)


@time_machine.travel(NOW, tick=False)
def test_the_list_with_warnings_still_shows_each_doses_warnings(api: APIClient, clinic: Clinic) -> None:
    every_kind_of_dose(clinic)

    rows = api.get(f"/api/doses/?clinic={clinic.pk}&warnings=true").json()["results"]

    assert all(list(row) == [*DoseSerializer.Meta.fields, "warnings"] for row in rows)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("query", ["", "&due_from=2027-01-20&due_to=2027-01-30", "&overdue=true"])
def test_the_list_takes_the_same_queries_for_one_dose_and_for_thirty(
    api: APIClient, clinic: Clinic, query: str, django_assert_num_queries: Any
) -> None:
    """The user's clinics, the count and the page (the overdue list: and the time zones of the doses on the edge
    of today), whatever the number of doses, patients and zones on the page."""
    url = f"/api/doses/?clinic={clinic.pk}{query}"
    first = RegimenFactory(patient=PatientFactory(clinic=clinic))
    add(first, 1, TODAY - timedelta(days=1) if "overdue" in query else TODAY)
    api.get(url)  # the client keeps its user, whose clinics are then read once
    queries = 3 if "overdue" in query else 2
    with django_assert_num_queries(queries):
        assert api.get(url).json()["count"] == 1

    for n in range(29):
        regimen = RegimenFactory(patient=PatientFactory(clinic=clinic, timezone=("Pacific/Auckland", "UTC")[n % 2]))
        add(regimen, 1, TODAY - timedelta(days=n % 2) if "overdue" in query else TODAY + timedelta(days=n % 5))
    with django_assert_num_queries(queries):
        assert api.get(url).json()["count"] == 30
