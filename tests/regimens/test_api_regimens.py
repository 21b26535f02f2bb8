"""API: protocols, schedule preview and regimens (SPEC "Public interface")."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import ClosedDate, Role
from regimens import services
from regimens.models import Protocol, Regimen, RegimenDecision, ScheduledDose
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user

# "Today" for most tests: a 2027 start date is then within the one-year limit.
TODAY = "2026-12-01 09:00:00+00:00"
# RULES "Scheduling semantics" example: hydroxo-uk-standard from Monday 2027-01-04, Mon–Fri clinic.
RULES_LOADING = ["2027-01-04", "2027-01-06", "2027-01-08", "2027-01-11", "2027-01-13", "2027-01-15"]
RULES_FIRST_MAINTENANCE = "2027-04-09"

pytestmark = pytest.mark.django_db


def start(patient: Any, code: str = "hydroxo-uk-standard", on: date = date(2027, 1, 4)) -> Regimen:
    return services.regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on)


def doses_of(body: dict[str, Any], phase: str) -> list[str]:
    return [d["due_date"] for d in body["doses"] if d["phase"] == phase and d.get("status", "planned") == "planned"]


@pytest.fixture
def api(clinician: Any) -> APIClient:
    """Regimens are a prescriber's work (SPEC "Who uses it"): these tests act as a clinician."""
    return client_for(clinician)


@pytest.fixture
def other_api(other_clinic: Any) -> APIClient:
    return client_for(staff_user(other_clinic, Role.CLINICIAN, username="other-clinician"))


# --- Protocols ------------------------------------------------------------------------------


def test_it_lists_the_built_in_protocols_with_phases_and_sources(api: APIClient) -> None:
    response = api.get("/api/protocols/")

    assert response.status_code == 200
    by_code = {p["code"]: p for p in response.json()["results"]}
    assert "hydroxo-uk-standard" in by_code
    assert "cyano-us-label" in by_code
    uk = by_code["hydroxo-uk-standard"]
    assert uk["source"]
    assert [p["key"] for p in uk["phases"]] == ["loading", "maintenance"]
    loading, maintenance = uk["phases"]
    assert loading["spacing"] == "times_per_week"
    assert loading["end_value"] == 6
    assert maintenance["spacing_value"] == 12
    assert maintenance["ranges"]["spacing_value"] == [8, 13]


def test_it_reads_a_protocol_by_code_or_by_id(api: APIClient) -> None:
    protocol = Protocol.objects.get(code="hydroxo-uk-neuro")

    by_code = api.get("/api/protocols/hydroxo-uk-neuro/")
    by_id = api.get(f"/api/protocols/{protocol.pk}/")

    assert by_code.status_code == 200
    assert by_id.json() == by_code.json()
    assert by_code.json()["phases"][0]["review_every_days"] == 14


def test_it_answers_404_for_an_unknown_protocol(api: APIClient) -> None:
    assert api.get("/api/protocols/no-such-protocol/").status_code == 404


def test_it_does_not_let_anyone_change_a_protocol_through_the_api(api: APIClient) -> None:
    response = api.patch("/api/protocols/hydroxo-uk-standard/", {"name": "Changed"}, format="json")

    assert response.status_code == 405
    assert Protocol.objects.get(code="hydroxo-uk-standard").name != "Changed"


@pytest.mark.parametrize(
    "path", ["/api/protocols/", "/api/regimens/", "/api/schedule/preview/", "/api/regimens/1/stop/"]
)
def test_it_refuses_anonymous_requests(anon_api: APIClient, path: str) -> None:
    response = anon_api.get(path) if not path.endswith(("preview/", "stop/")) else anon_api.post(path, {})

    assert response.status_code == 401


# --- Schedule preview -----------------------------------------------------------------------


@time_machine.travel(TODAY, tick=False)
def test_it_previews_the_rules_example_without_storing_anything(api: APIClient) -> None:
    response = api.post(
        "/api/schedule/preview/",
        {"protocol": "hydroxo-uk-standard", "start_date": "2027-01-04", "timezone": "Europe/London"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert doses_of(body, "loading") == RULES_LOADING
    assert doses_of(body, "maintenance")[0] == RULES_FIRST_MAINTENANCE
    assert body["doses"][0]["dose_amount"] == 1000
    assert body["doses"][0]["dose_unit"] == "mcg"
    assert body["lab_rechecks"], "with no baseline results L-6, L-7 and L-8 are planned"
    assert body["reviews"] == []
    assert Regimen.objects.count() == 0
    assert ScheduledDose.objects.count() == 0


@time_machine.travel(TODAY, tick=False)
def test_it_previews_with_the_clinic_calendar(api: APIClient, clinic: Any) -> None:
    # Given the clinic is shut on Wednesday 6 January 2027
    ClosedDate.objects.create(clinic=clinic, date=date(2027, 1, 6))

    response = api.post(
        "/api/schedule/preview/",
        {"protocol": "hydroxo-uk-standard", "start_date": "2027-01-04", "clinic": clinic.pk},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert "2027-01-06" not in doses_of(response.json(), "loading")
    assert doses_of(response.json(), "loading")[1] == "2027-01-07"


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"protocol": "no-such-protocol", "start_date": "2027-01-04"}, "protocol"),
        ({"protocol": "hydroxo\x00", "start_date": "2027-01-04"}, "protocol"),  # PostgreSQL cannot store NUL
        ({"start_date": "2027-01-04"}, "protocol"),
        ({"protocol": "hydroxo-uk-standard", "start_date": "2027-02-30"}, "start_date"),
        ({"protocol": "hydroxo-uk-standard", "start_date": "04/01/2027"}, "start_date"),
        ({"protocol": "hydroxo-uk-standard"}, "start_date"),
        # More than a year ahead of "today" (2026-12-01).
        ({"protocol": "hydroxo-uk-standard", "start_date": "2028-01-04"}, "start_date"),
        ({"protocol": "hydroxo-uk-standard", "start_date": "2027-01-04", "timezone": "Mars/Olympus"}, "timezone"),
        ({"protocol": "hydroxo-uk-standard", "start_date": "2027-01-04", "options": [1, 2]}, "options"),
    ],
)
def test_it_refuses_a_bad_preview_naming_the_field(api: APIClient, body: dict[str, Any], field: str) -> None:
    response = api.post("/api/schedule/preview/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_a_preview_with_another_clinics_calendar(api: APIClient, other_clinic: Any) -> None:
    response = api.post(
        "/api/schedule/preview/",
        {"protocol": "hydroxo-uk-standard", "start_date": "2027-01-04", "clinic": other_clinic.pk},
        format="json",
    )

    assert response.status_code == 400
    assert "clinic" in response.json()


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_preview_options_outside_the_protocol(api: APIClient) -> None:
    response = api.post(
        "/api/schedule/preview/",
        {
            "protocol": "hydroxo-uk-standard",
            "start_date": "2027-01-04",
            "options": {"phases": {"maintenance": {"spacing_value": 52}}},
        },
        format="json",
    )

    assert response.status_code == 400
    assert any(key.startswith("options") for key in response.json())


# --- Regimens: create, list, read ----------------------------------------------------------


@time_machine.travel(TODAY, tick=False)
def test_it_starts_the_rules_example_regimen_with_its_schedule(api: APIClient, patient: Any) -> None:
    response = api.post(
        "/api/regimens/",
        {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": "2027-01-04"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["protocol"] == "hydroxo-uk-standard"
    assert body["status"] == "active"
    assert body["current_phase_key"] == "loading"
    assert doses_of(body, "loading") == RULES_LOADING
    assert doses_of(body, "maintenance")[0] == RULES_FIRST_MAINTENANCE
    assert {r["rule"] for r in body["lab_rechecks"]} >= {"L-6", "L-7"}
    # And the schedule is stored, not only shown.
    stored = ScheduledDose.objects.filter(regimen_id=body["id"], phase="loading").order_by("due_date")
    assert [d.due_date.isoformat() for d in stored] == RULES_LOADING


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_a_regimen_for_another_clinics_patient(api: APIClient, other_patient: Any) -> None:
    response = api.post(
        "/api/regimens/",
        {"patient": other_patient.pk, "protocol": "hydroxo-uk-standard", "start_date": "2027-01-04"},
        format="json",
    )

    assert response.status_code == 400
    assert "patient" in response.json()
    assert not Regimen.objects.exists()


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"protocol": "no-such-protocol"}, "protocol"),
        ({"start_date": "2027-13-01"}, "start_date"),
        ({"start_date": "2028-01-04"}, "start_date"),
        ({"patient": 999999}, "patient"),
        ({"options": "weekly please"}, "options"),
        ({"options": {"enrol": {"phase": "nonsense"}}}, "options.enrol.phase"),
        ({"acknowledge": "lifelong_therapy_stopped"}, "acknowledge"),
    ],
)
def test_it_refuses_a_bad_regimen_and_writes_nothing(
    api: APIClient, patient: Any, changes: dict[str, Any], field: str
) -> None:
    body = {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": "2027-01-04", **changes}

    response = api.post("/api/regimens/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Regimen.objects.exists()
    assert not ScheduledDose.objects.exists()


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_a_second_active_regimen(api: APIClient, patient: Any) -> None:
    start(patient)

    response = api.post(
        "/api/regimens/",
        {"patient": patient.pk, "protocol": "hydroxo-uk-neuro", "start_date": "2027-01-04"},
        format="json",
    )

    assert response.status_code == 400
    assert "patient" in response.json()
    assert Regimen.objects.count() == 1


@time_machine.travel(TODAY, tick=False)
def test_it_lists_only_the_users_clinics_regimens_with_filters(
    api: APIClient, clinic: Any, patient: Any, other_patient: Any
) -> None:
    mine = start(patient)
    second = PatientFactory(clinic=clinic)
    stopped = start(second, "hydroxo-uk-neuro")
    services.regimen_stop(regimen=stopped, reason="moved away", acknowledge=["lifelong_therapy_stopped"])
    theirs = start(other_patient)

    everything = {r["id"] for r in api.get("/api/regimens/").json()["results"]}
    by_patient = {r["id"] for r in api.get(f"/api/regimens/?patient={patient.pk}").json()["results"]}
    by_status = {r["id"] for r in api.get("/api/regimens/?status=stopped").json()["results"]}

    assert everything == {mine.pk, stopped.pk}
    assert by_patient == {mine.pk}
    assert by_status == {stopped.pk}
    assert theirs.pk not in everything
    assert api.get(f"/api/regimens/{theirs.pk}/").status_code == 404


@time_machine.travel(TODAY, tick=False)
def test_it_reads_a_regimen_with_its_schedule(api: APIClient, patient: Any) -> None:
    regimen = start(patient)

    response = api.get(f"/api/regimens/{regimen.pk}/")

    assert response.status_code == 200
    assert doses_of(response.json(), "loading") == RULES_LOADING


# --- Regimens: actions ----------------------------------------------------------------------


@time_machine.travel(TODAY, tick=False)
def test_it_needs_the_s5_warning_acknowledged_to_stop_lifelong_therapy(api: APIClient, patient: Any) -> None:
    # Given a pernicious anaemia patient on lifelong therapy
    assert patient.deficiency_cause == "pernicious_anemia"
    regimen = start(patient)

    # When the regimen is stopped without acknowledging the warning
    refused = api.post(f"/api/regimens/{regimen.pk}/stop/", {"reason": "patient request"}, format="json")

    # Then nothing changes and the warning is listed
    assert refused.status_code == 400
    assert "acknowledge" in refused.json()
    assert [w["code"] for w in refused.json()["warnings"]] == ["lifelong_therapy_stopped"]
    assert [w["rule"] for w in refused.json()["warnings"]] == ["S-5"]
    regimen.refresh_from_db()
    assert regimen.status == "active"

    # When it is stopped again, acknowledging the warning
    stopped = api.post(
        f"/api/regimens/{regimen.pk}/stop/",
        {"reason": "patient request", "acknowledge": ["lifelong_therapy_stopped"]},
        format="json",
    )

    # Then it is stopped, the acknowledgement is kept and no dose is still planned
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["status"] == "stopped"
    regimen.refresh_from_db()
    assert regimen.status == "stopped"
    assert regimen.stop_reason == "patient request"
    assert regimen.acknowledged_warnings == ["lifelong_therapy_stopped"]
    assert not regimen.doses.filter(status="planned").exists()


@time_machine.travel(TODAY, tick=False)
def test_it_stops_a_regimen_of_a_reversible_cause_without_a_warning(api: APIClient, clinic: Any) -> None:
    regimen = start(PatientFactory(clinic=clinic, deficiency_cause="diet"), "diet-oral", date(2026, 12, 1))

    response = api.post(f"/api/regimens/{regimen.pk}/stop/", {"reason": "diet corrected"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "stopped"


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_to_stop_without_a_reason_or_twice(api: APIClient, patient: Any) -> None:
    regimen = start(patient)

    no_reason = api.post(f"/api/regimens/{regimen.pk}/stop/", {"reason": "  "}, format="json")
    services.regimen_stop(regimen=regimen, reason="moved to another area", acknowledge=["lifelong_therapy_stopped"])
    twice = api.post(
        f"/api/regimens/{regimen.pk}/stop/",
        {"reason": "again", "acknowledge": ["lifelong_therapy_stopped"]},
        format="json",
    )

    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()
    assert twice.status_code == 409
    assert "regimen" in twice.json()


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("stop", {"reason": "x", "acknowledge": ["lifelong_therapy_stopped"]}),
        ("end-loading", {}),
        ("confirm-gate", {}),
        ("review", {"outcome": "still_improving"}),
        ("shorten-interval", {"spacing_value": 6, "override_reason": "a reason long enough"}),
    ],
)
def test_it_hides_another_clinics_regimen_from_every_action(
    api: APIClient, other_patient: Any, action: str, body: dict[str, Any]
) -> None:
    regimen = start(other_patient, "hydroxo-uk-neuro")

    response = api.post(f"/api/regimens/{regimen.pk}/{action}/", body, format="json")

    assert response.status_code == 404
    regimen.refresh_from_db()
    assert regimen.status == "active"
    assert not RegimenDecision.objects.exists()


@time_machine.travel(TODAY, tick=False)
def test_it_ends_an_open_ended_loading_phase_and_plans_maintenance(api: APIClient, patient: Any) -> None:
    # Given a neuro regimen started today with its first dose given
    regimen = start(patient, "hydroxo-uk-neuro", date(2026, 12, 1))
    first = regimen.doses.get(phase="loading", sequence=1)
    services.dose_record_administration(dose=first, administered_at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC))

    # When the clinician ends loading (no further improvement), saying why so early (one dose: §10 V-5)
    response = api.post(
        f"/api/regimens/{regimen.pk}/end-loading/",
        {"note": "no further improvement", "reason": "specialist advised maintenance"},
        format="json",
    )

    # Then maintenance is planned 8 weeks after the last loading dose and no more loading doses
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["current_phase_key"] == "maintenance"
    assert doses_of(body, "loading") == []
    assert doses_of(body, "maintenance")[0] == "2027-01-26"
    assert [d["kind"] for d in body["decisions"]] == ["end_phase"]
    assert body["decisions"][0]["note"].endswith("(§10 V-5): specialist advised maintenance")


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_to_end_the_neuro_loading_phase_before_a_loading_dose_is_given(api: APIClient, patient: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro", date(2026, 12, 1))

    response = api.post(f"/api/regimens/{regimen.pk}/end-loading/", {"reason": "patient declined"}, format="json")

    assert response.status_code == 409
    assert "phase" in response.json()
    assert not RegimenDecision.objects.exists()


@time_machine.travel(TODAY, tick=False)
def test_it_asks_for_the_reason_when_the_neuro_loading_phase_ends_before_six_doses(
    api: APIClient, patient: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-neuro", date(2026, 12, 1))
    first = regimen.doses.get(phase="loading", sequence=1)
    services.dose_record_administration(dose=first, administered_at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC))

    response = api.post(f"/api/regimens/{regimen.pk}/end-loading/", {"note": "no further improvement"}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()
    assert not RegimenDecision.objects.exists()


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_to_end_a_phase_that_ends_by_itself(api: APIClient, patient: Any) -> None:
    regimen = start(patient)

    response = api.post(f"/api/regimens/{regimen.pk}/end-loading/", {}, format="json")

    assert response.status_code == 409
    assert "phase" in response.json()
    assert not RegimenDecision.objects.exists()


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_an_end_date_in_the_future(api: APIClient, patient: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro", date(2026, 12, 1))

    response = api.post(f"/api/regimens/{regimen.pk}/end-loading/", {"ended_on": "2026-12-25"}, format="json")

    assert response.status_code == 400
    assert "ended_on" in response.json()
    assert not RegimenDecision.objects.exists()


def test_it_confirms_the_reticulocyte_gate_and_plans_the_next_phase(api: APIClient, patient: Any) -> None:
    # Given a cyano-us-label regimen whose seven daily doses have all been given
    with time_machine.travel(TODAY, tick=False):
        regimen = start(patient, "cyano-us-label", date(2026, 12, 1))
        # (while daily doses remain to be given it is not yet waiting for anyone)
        assert api.get(f"/api/regimens/{regimen.pk}/").json()["awaiting_gate"] is False
    with time_machine.travel("2026-12-14 18:00:00+00:00", tick=False):
        for _ in range(7):
            dose = regimen.doses.filter(phase="daily", status="planned").order_by("sequence").first()
            assert dose is not None
            at = datetime.combine(dose.due_date, time(10, 0), tzinfo=UTC)
            services.dose_record_administration(dose=dose, administered_at=at)
        waiting = api.get(f"/api/regimens/{regimen.pk}/").json()
        assert waiting["awaiting_gate"] is True
        assert doses_of(waiting, "alternate") == []

        # When the clinician confirms the reticulocyte response
        response = api.post(
            f"/api/regimens/{regimen.pk}/confirm-gate/", {"note": "reticulocytes up on day 6"}, format="json"
        )

    # Then the alternate-day phase is planned
    assert response.status_code == 200, response.json()
    assert response.json()["awaiting_gate"] is False
    assert len(doses_of(response.json(), "alternate")) == 7


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_to_confirm_a_gate_nobody_is_waiting_for(api: APIClient, patient: Any) -> None:
    regimen = start(patient)

    response = api.post(f"/api/regimens/{regimen.pk}/confirm-gate/", {}, format="json")

    assert response.status_code == 409
    assert "regimen" in response.json()


@time_machine.travel(TODAY, tick=False)
def test_it_records_a_review_of_the_open_ended_phase(api: APIClient, patient: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro", date(2026, 12, 1))

    response = api.post(
        f"/api/regimens/{regimen.pk}/review/", {"outcome": "still_improving", "note": "walking better"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert [(d["kind"], d["outcome"]) for d in response.json()["decisions"]] == [("review", "still_improving")]
    assert response.json()["current_phase_key"] == "loading"


@time_machine.travel(TODAY, tick=False)
def test_it_refuses_an_unknown_review_outcome(api: APIClient, patient: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro", date(2026, 12, 1))

    response = api.post(f"/api/regimens/{regimen.pk}/review/", {"outcome": "fine"}, format="json")

    assert response.status_code == 400
    assert "outcome" in response.json()
    assert not RegimenDecision.objects.exists()


# --- Roles ----------------------------------------------------------------------------------


@time_machine.travel(TODAY, tick=False)
def test_it_lets_a_nurse_read_but_not_start_a_regimen(nurse_api: APIClient, patient: Any) -> None:
    body = {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": "2027-01-04"}

    response = nurse_api.post("/api/regimens/", body, format="json")

    assert response.status_code == 403
    assert "clinician" in response.json()["detail"]
    assert not Regimen.objects.filter(patient=patient).exists()
    assert nurse_api.get("/api/regimens/").status_code == 200


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("stop", {"reason": "patient request", "acknowledge": ["lifelong_therapy_stopped"]}),
        ("end-loading", {}),
        ("confirm-gate", {}),
        ("review", {"outcome": "still_improving"}),
        ("shorten-interval", {"spacing_value": 6, "override_reason": "a reason long enough"}),
    ],
)
@time_machine.travel(TODAY, tick=False)
def test_it_keeps_clinician_decisions_from_a_nurse(
    nurse_api: APIClient, patient: Any, action: str, body: dict[str, Any]
) -> None:
    regimen = start(patient)

    response = nurse_api.post(f"/api/regimens/{regimen.pk}/{action}/", body, format="json")

    assert response.status_code == 403
    regimen.refresh_from_db()
    assert regimen.status == "active"
    assert not regimen.decisions.exists()


def test_it_answers_404_for_a_protocol_code_of_superscript_digits(api: APIClient) -> None:
    # "¹".isdigit() is True in Python but int("¹") fails: this used to be a 500 (found by the fuzzer).
    assert api.get("/api/protocols/¹/").status_code == 404
