"""API: scheduled doses (the worklist, recording given / not given) and lab rechecks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from regimens import services
from regimens.models import Protocol, Regimen, ScheduledDose
from tests.factories import LabRecheckFactory, PatientFactory, RegimenFactory

TODAY = "2026-12-01 09:00:00+00:00"

pytestmark = pytest.mark.django_db


def start(patient: Any, code: str = "hydroxo-uk-standard", on: date = date(2027, 1, 4)) -> Regimen:
    return services.regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on)


def dose(regimen: Regimen, phase: str = "loading", sequence: int = 1) -> ScheduledDose:
    return regimen.doses.get(phase=phase, sequence=sequence, status__in=["planned", "given"])


def planned_dates(api: APIClient, regimen: Regimen, phase: str = "loading") -> list[str]:
    response = api.get(f"/api/doses/?regimen={regimen.pk}&status=planned")
    return [d["due_date"] for d in response.json()["results"] if d["phase"] == phase]


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def regimen(patient: Any) -> Regimen:
    with time_machine.travel(TODAY, tick=False):
        return start(patient)


@pytest.fixture
def other_regimen(other_clinic: Any) -> Regimen:
    with time_machine.travel(TODAY, tick=False):
        return start(PatientFactory(clinic=other_clinic))


# --- The dose list --------------------------------------------------------------------------


@time_machine.travel(TODAY, tick=False)
def test_it_lists_doses_with_the_fields_a_nurse_needs(api: APIClient, regimen: Regimen) -> None:
    response = api.get(f"/api/doses/?regimen={regimen.pk}")

    assert response.status_code == 200
    first = response.json()["results"][0]
    assert first["regimen"] == regimen.pk
    assert first["patient"] == regimen.patient_id
    assert first["phase"] == "loading"
    assert first["sequence"] == 1
    assert first["due_date"] == "2027-01-04"
    assert first["drug"] == "hydroxocobalamin"
    assert (first["dose_amount"], first["dose_unit"], first["route"]) == (1000, "mcg", "IM")
    assert first["status"] == "planned"
    assert first["overdue"] is False
    assert first["administered_at"] is None


@time_machine.travel(TODAY, tick=False)
def test_it_shows_a_dose_in_milligrams_as_milligrams(api: APIClient, regimen: Regimen) -> None:
    # Given a dose whose unit for people is mg (1000 mcg = 1 mg, RULES §1.1)
    ScheduledDose.objects.filter(pk=dose(regimen).pk).update(dose_unit="mg", dose_mcg=1500)

    response = api.get(f"/api/doses/{dose(regimen).pk}/")

    assert (response.json()["dose_amount"], response.json()["dose_unit"]) == (1.5, "mg")


def test_it_flags_a_planned_dose_past_its_due_date_as_overdue(api: APIClient, regimen: Regimen) -> None:
    # Given today is Thursday 7 January: the doses of 4 and 6 January were never recorded
    with time_machine.travel("2027-01-07 09:00:00+00:00", tick=False):
        everything = api.get(f"/api/doses/?regimen={regimen.pk}").json()["results"]
        overdue = api.get(f"/api/doses/?regimen={regimen.pk}&overdue=true").json()["results"]
        not_overdue = api.get(f"/api/doses/?regimen={regimen.pk}&overdue=false").json()["results"]

    assert [d["due_date"] for d in everything if d["overdue"]] == ["2027-01-04", "2027-01-06"]
    assert [d["due_date"] for d in overdue] == ["2027-01-04", "2027-01-06"]
    assert "2027-01-06" not in [d["due_date"] for d in not_overdue]
    assert len(overdue) + len(not_overdue) == len(everything)


def test_it_judges_overdue_by_the_patients_own_calendar_day(api: APIClient, clinic: Any) -> None:
    # Given a patient in Auckland and one in London, both with a dose due on 4 January
    with time_machine.travel(TODAY, tick=False):
        auckland = start(PatientFactory(clinic=clinic, timezone="Pacific/Auckland"))
        london = start(PatientFactory(clinic=clinic, timezone="Europe/London"))

    # When it is 20:00 on 4 January in London, already 5 January in Auckland
    with time_machine.travel("2027-01-04 20:00:00+00:00", tick=False):
        overdue = ids(api.get("/api/doses/?overdue=true"))

    # Then only the Auckland patient's dose is overdue
    assert dose(auckland).pk in overdue
    assert dose(london).pk not in overdue


@time_machine.travel(TODAY, tick=False)
def test_it_filters_doses_by_patient_clinic_status_and_due_dates(api: APIClient, clinic: Any, regimen: Regimen) -> None:
    second = start(PatientFactory(clinic=clinic), "hydroxo-uk-neuro", date(2026, 12, 1))
    services.dose_record_administration(dose=dose(second), administered_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC))

    by_patient = ids(api.get(f"/api/doses/?patient={regimen.patient_id}"))
    by_clinic = ids(api.get(f"/api/doses/?clinic={clinic.pk}"))
    given = ids(api.get("/api/doses/?status=given"))
    window = api.get(f"/api/doses/?regimen={regimen.pk}&due_from=2027-01-06&due_to=2027-01-11").json()["results"]

    assert by_patient == set(regimen.doses.values_list("id", flat=True))
    assert by_clinic >= by_patient | {dose(second).pk}
    assert given == {dose(second).pk}
    assert [d["due_date"] for d in window] == ["2027-01-06", "2027-01-08", "2027-01-11"]


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize("query", ["status=lost", "due_from=yesterday", "due_to=2027-02-30", "overdue=maybe"])
def test_it_refuses_a_malformed_filter(api: APIClient, regimen: Regimen, query: str) -> None:
    response = api.get(f"/api/doses/?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


@time_machine.travel(TODAY, tick=False)
def test_it_hides_another_clinics_doses(api: APIClient, regimen: Regimen, other_regimen: Regimen) -> None:
    theirs = dose(other_regimen)

    listed = ids(api.get("/api/doses/"))
    by_their_clinic = ids(api.get(f"/api/doses/?clinic={other_regimen.patient.clinic_id}"))

    assert theirs.pk not in listed
    assert by_their_clinic == set()
    assert api.get(f"/api/doses/{theirs.pk}/").status_code == 404


def test_it_refuses_anonymous_dose_requests(anon_api: APIClient, regimen: Regimen) -> None:
    assert anon_api.get("/api/doses/").status_code == 401
    response = anon_api.post(f"/api/doses/{dose(regimen).pk}/administer/", {}, format="json")
    assert response.status_code == 401


@time_machine.travel(TODAY, tick=False)
def test_it_lists_doses_in_a_constant_number_of_queries(
    api: APIClient, clinic: Any, regimen: Regimen, django_assert_max_num_queries: Any
) -> None:
    # Given one regimen, the list takes a few queries
    with django_assert_max_num_queries(5):
        few = api.get("/api/doses/?overdue=false")
    # Given five more patients with a daily oral regimen (hundreds of doses), it takes no more
    for _ in range(5):
        bariatric = PatientFactory(clinic=clinic, timezone="America/New_York", deficiency_cause="bariatric_surgery")
        start(bariatric, "bariatric-oral", date(2026, 12, 1))
    with django_assert_max_num_queries(5):
        many = api.get("/api/doses/?overdue=false")

    assert few.json()["count"] < many.json()["count"]
    assert len(many.json()["results"]) == 50


# --- Administer -----------------------------------------------------------------------------


def test_it_records_a_late_dose_and_replans_the_later_doses_from_it(api: APIClient, regimen: Regimen) -> None:
    # Given the first loading dose (due Monday 4 January) is given late, on Thursday 7 January
    with time_machine.travel("2027-01-07 15:00:00+00:00", tick=False):
        response = api.post(
            f"/api/doses/{dose(regimen).pk}/administer/",
            {
                "administered_at": "2027-01-07T10:30:00+00:00",
                "lot_number": "HX2231",
                "expiry_date": "2028-06-30",
                "site": "left deltoid",
            },
            format="json",
        )
        later = planned_dates(api, regimen)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "given"
    assert body["administered_at"] == "2027-01-07T10:30:00Z"
    assert (body["lot_number"], body["expiry_date"], body["site"], body["given_route"]) == (
        "HX2231",
        "2028-06-30",
        "left deltoid",
        "IM",
    )
    # Then the next dose is two days after the actual date, moved off the weekend: not 6 January
    assert later[0] == "2027-01-11"
    assert "2027-01-06" not in later
    assert len(later) == 5


def test_the_answer_to_a_recorded_dose_is_the_row_as_it_reads_back(api: APIClient, regimen: Regimen) -> None:
    # The answer is the row the service wrote (issue 16: not read back), so it must read back the same
    body = {
        "administered_at": "2027-01-04T11:30:00+01:00",  # another offset than the server's
        "lot_number": "HX9",
        "expiry_date": "2028-01-31",
        "site": " right thigh ",
    }
    with time_machine.travel("2027-01-04 15:00:00+00:00", tick=False):
        given = api.post(f"/api/doses/{dose(regimen).pk}/administer/", body, format="json")
        missed = ScheduledDose.objects.filter(regimen=regimen, status="planned").order_by("due_date").first()
        assert missed is not None
    with time_machine.travel(f"{missed.due_date} 17:00:00+00:00", tick=False):
        not_given = api.post(f"/api/doses/{missed.pk}/not-given/", {"reason": "did not attend"}, format="json")

        assert given.status_code == 200 and not_given.status_code == 200, (given.json(), not_given.json())
        # (reading one dose adds the warnings giving it now would raise: none for a dose no longer planned)
        assert {**given.json(), "warnings": []} == api.get(f"/api/doses/{given.json()['id']}/").json()
        assert {**not_given.json(), "warnings": []} == api.get(f"/api/doses/{missed.pk}/").json()
    assert given.json()["administered_at"] == "2027-01-04T10:30:00Z"


def test_it_treats_a_repeat_of_the_same_administration_as_a_no_op(api: APIClient, regimen: Regimen) -> None:
    body = {"administered_at": "2027-01-04T10:30:00+00:00", "lot_number": "HX1"}
    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        first = api.post(f"/api/doses/{dose(regimen).pk}/administer/", body, format="json")
        before = planned_dates(api, regimen)
        again = api.post(f"/api/doses/{dose(regimen).pk}/administer/", body, format="json")
        after = planned_dates(api, regimen)

    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json() == first.json()
    assert after == before


def test_it_answers_409_to_a_conflicting_repeat(api: APIClient, regimen: Regimen) -> None:
    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        api.post(
            f"/api/doses/{dose(regimen).pk}/administer/",
            {"administered_at": "2027-01-04T10:30:00+00:00", "lot_number": "HX1"},
            format="json",
        )
        conflict = api.post(
            f"/api/doses/{dose(regimen).pk}/administer/",
            {"administered_at": "2027-01-04T11:30:00+00:00", "lot_number": "HX1"},
            format="json",
        )

    assert conflict.status_code == 409
    assert "status" in conflict.json()
    assert dose(regimen).administered_at == datetime(2027, 1, 4, 10, 30, tzinfo=UTC)


@time_machine.travel("2027-01-05 12:00:00+00:00", tick=False)
def test_it_refuses_to_administer_a_cancelled_dose(api: APIClient, regimen: Regimen) -> None:
    # Given the regimen was stopped, so its planned doses are cancelled
    services.regimen_stop(regimen=regimen, reason="moved away", acknowledge=["lifelong_therapy_stopped"])
    cancelled = regimen.doses.get(phase="loading", sequence=1)
    assert cancelled.status == "cancelled"

    response = api.post(
        f"/api/doses/{cancelled.pk}/administer/", {"administered_at": "2027-01-04T10:30:00+00:00"}, format="json"
    )

    assert response.status_code == 409
    assert "status" in response.json()
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled"
    assert cancelled.administered_at is None


@time_machine.travel("2027-01-05 12:00:00+00:00", tick=False)
def test_it_hides_another_clinics_dose_from_administer_and_not_given(api: APIClient, other_regimen: Regimen) -> None:
    theirs = dose(other_regimen)

    given = api.post(
        f"/api/doses/{theirs.pk}/administer/", {"administered_at": "2027-01-04T10:30:00+00:00"}, format="json"
    )
    not_given = api.post(f"/api/doses/{theirs.pk}/not-given/", {"reason": "did not attend"}, format="json")

    assert given.status_code == 404
    assert not_given.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "planned"


@time_machine.travel("2027-01-05 12:00:00+00:00", tick=False)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"administered_at": "2027-01-04T10:30:00"}, "administered_at"),  # naive: which zone?
        ({"administered_at": "2027-01-06T10:30:00+00:00"}, "administered_at"),  # tomorrow
        ({"administered_at": "yesterday"}, "administered_at"),
        ({}, "administered_at"),
        ({"administered_at": "2026-11-01T10:30:00+00:00"}, "administered_at"),  # weeks before the start
        ({"administered_at": "2027-01-04T10:30:00+00:00", "route": "IX"}, "route"),
        ({"administered_at": "2027-01-04T10:30:00+00:00", "expiry_date": "2026-12-31"}, "expiry_date"),
        ({"administered_at": "2027-01-04T10:30:00+00:00", "expiry_date": "soon"}, "expiry_date"),
        ({"administered_at": "2027-01-04T10:30:00+00:00", "lot_number": "L" * 61}, "lot_number"),
        ({"administered_at": "2027-01-04T10:30:00+00:00", "acknowledge": "all"}, "acknowledge"),
    ],
)
def test_it_refuses_a_bad_administration_and_writes_nothing(
    api: APIClient, regimen: Regimen, body: dict[str, Any], field: str
) -> None:
    before = planned_dates(api, regimen)

    response = api.post(f"/api/doses/{dose(regimen).pk}/administer/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert dose(regimen).status == "planned"
    assert planned_dates(api, regimen) == before


# --- Not given ------------------------------------------------------------------------------


@time_machine.travel("2027-01-04 17:00:00+00:00", tick=False)
def test_it_records_a_dose_not_given_and_plans_a_replacement(api: APIClient, regimen: Regimen) -> None:
    missed = dose(regimen)

    response = api.post(f"/api/doses/{missed.pk}/not-given/", {"reason": "did not attend"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "not_given"
    assert response.json()["not_given_reason"] == "did not attend"
    # The missed dose stays visible, and a replacement for slot 1 is planned after 4 January.
    rows = api.get(f"/api/doses/?regimen={regimen.pk}").json()["results"]
    slot_one = [(d["status"], d["due_date"]) for d in rows if d["phase"] == "loading" and d["sequence"] == 1]
    assert ("not_given", "2027-01-04") in slot_one
    assert ("planned", "2027-01-05") in slot_one


@time_machine.travel("2027-01-04 17:00:00+00:00", tick=False)
@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "reason"), ({"reason": "   "}, "reason"), ({"reason": "ill", "on": "2027-02-01"}, "on")],
)
def test_it_refuses_a_bad_not_given_record(api: APIClient, regimen: Regimen, body: dict[str, Any], field: str) -> None:
    response = api.post(f"/api/doses/{dose(regimen).pk}/not-given/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert dose(regimen).status == "planned"


# --- Lab rechecks ---------------------------------------------------------------------------


@time_machine.travel(TODAY, tick=False)
def test_it_lists_the_lab_rechecks_of_a_regimen(api: APIClient, regimen: Regimen) -> None:
    response = api.get(f"/api/lab-rechecks/?regimen={regimen.pk}")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert {r["rule"] for r in rows} >= {"L-6", "L-7"}
    hb = next(r for r in rows if r["rule"] == "L-6")
    assert "hemoglobin" in hb["analytes"]
    assert hb["status"] == "due"
    assert hb["patient"] == regimen.patient_id
    assert hb["window_start"] <= hb["due_date"] <= hb["window_end"]


@time_machine.travel("2027-01-04 10:30:00+00:00", tick=False)  # the 4th in London, already the 5th in Kiritimati
def test_a_recheck_window_ending_on_the_edge_of_today_is_judged_in_its_patients_zone(
    api: APIClient, clinic: Any
) -> None:
    """Two rechecks whose windows end on the 4th: overdue in Kiritimati (UTC+14, the 5th there), still due in London;
    the patients in the zones past the date are matched as a set (as the dose worklist), not looked up per recheck."""
    rechecks = {
        zone: LabRecheckFactory(
            regimen=RegimenFactory(patient=PatientFactory(clinic=clinic, timezone=zone)),
            due_date=date(2027, 1, 1),
            window_start=date(2026, 12, 29),
            window_end=date(2027, 1, 4),
        ).pk
        for zone in ("Europe/London", "Pacific/Kiritimati")
    }
    with CaptureQueriesContext(connection) as queries:
        overdue = api.get("/api/lab-rechecks/?status=overdue").json()
    statements = [q["sql"] for q in queries.captured_queries]  # (the next request clears the log)
    due = ids(api.get("/api/lab-rechecks/?status=due"))

    assert {r["id"] for r in overdue["results"]} == {rechecks["Pacific/Kiritimati"]} and overdue["count"] == 1
    assert due == {rechecks["Europe/London"]}
    listed = [sql for sql in statements if '"regimens_labrecheck"."window_end" <' in sql]  # the count and the page
    assert len(listed) == 2
    assert all("EXISTS" not in sql and '"timezone" IN (' in sql for sql in listed), listed


def test_it_reports_a_recheck_whose_window_has_passed_as_overdue(api: APIClient, regimen: Regimen) -> None:
    first = regimen.lab_rechecks.order_by("window_end").first()
    assert first is not None

    with time_machine.travel(datetime.combine(first.window_end, datetime.min.time(), tzinfo=UTC), tick=False):
        on_last_day = api.get(f"/api/lab-rechecks/{first.pk}/").json()["status"]
    with time_machine.travel(f"{first.window_end.isoformat()} 23:30:00+00:00", tick=False):
        # 23:30 in London is still the last day of the window.
        still_due = ids(api.get("/api/lab-rechecks/?status=due"))
    with time_machine.travel(f"{first.window_end.isoformat()} 23:59:00-02:00", tick=False):
        overdue = ids(api.get("/api/lab-rechecks/?status=overdue"))
        due = ids(api.get("/api/lab-rechecks/?status=due"))
        shown = api.get(f"/api/lab-rechecks/{first.pk}/").json()["status"]

    assert on_last_day == "due"
    assert first.pk in still_due
    assert first.pk in overdue
    assert first.pk not in due
    assert shown == "overdue"


@time_machine.travel(TODAY, tick=False)
def test_it_filters_lab_rechecks_by_patient_and_due_dates(api: APIClient, clinic: Any, regimen: Regimen) -> None:
    second = start(PatientFactory(clinic=clinic), "hydroxo-uk-neuro", date(2026, 12, 1))

    by_patient = api.get(f"/api/lab-rechecks/?patient={regimen.patient_id}").json()["results"]
    january = api.get("/api/lab-rechecks/?due_from=2027-01-01&due_to=2027-01-31").json()["results"]

    assert {r["regimen"] for r in by_patient} == {regimen.pk}
    assert january
    assert all("2027-01-01" <= r["due_date"] <= "2027-01-31" for r in january)
    assert second.pk in {r["regimen"] for r in january}


@time_machine.travel(TODAY, tick=False)
def test_it_hides_another_clinics_lab_rechecks(
    api: APIClient, anon_api: APIClient, regimen: Regimen, other_regimen: Regimen
) -> None:
    theirs = other_regimen.lab_rechecks.first()
    assert theirs is not None

    listed = ids(api.get("/api/lab-rechecks/"))

    assert theirs.pk not in listed
    assert listed
    assert api.get(f"/api/lab-rechecks/{theirs.pk}/").status_code == 404
    assert anon_api.get("/api/lab-rechecks/").status_code == 401
