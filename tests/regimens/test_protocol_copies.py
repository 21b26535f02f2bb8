"""Issue 12: a clinic's own protocol copy. A clinic admin copies a shared protocol for their clinic, localises its
phases within the shared protocol's ranges and retires it; the clinic's staff start regimens on it; another clinic
cannot see, use or copy it; the shared protocol never changes; a running regimen keeps its snapshot."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from patients.models import Role
from regimens import services
from regimens.models import Protocol, Regimen, RegimenStatus
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user
from tests.timeline import T0

pytestmark = pytest.mark.django_db

SHARED = "hydroxo-uk-standard"


def phase_of(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p for p in body["phases"] if p["key"] == key)


@pytest.fixture
def intruder_api(other_clinic: Any) -> APIClient:
    """A clinic admin of the other clinic (the most an outsider's role may do with protocols)."""
    return client_for(staff_user(other_clinic, Role.ADMIN, username="other-admin"))


# --- Copying -------------------------------------------------------------------------------------------


def test_it_copies_a_shared_protocol_for_the_clinic_admins_clinic(admin_api: APIClient, clinic: Any) -> None:
    shared = Protocol.objects.get(code=SHARED)

    response = admin_api.post(f"/api/protocols/{SHARED}/copy/", {"reason": "local maintenance interval"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "hydroxo-uk-standard-riverside-haematology"
    assert body["name"] == f"{shared.name} (Riverside Haematology)"
    assert (body["clinic"], body["copied_from"], body["is_builtin"], body["active"]) == (
        clinic.pk, shared.pk, False, True,
    )  # fmt: skip
    original = admin_api.get(f"/api/protocols/{SHARED}/").json()
    assert body["phases"] == original["phases"]  # ranges included: the bounds copy as they are
    assert body["recheck_steps"] == original["recheck_steps"]
    assert body["rules"] == original["rules"] and body["source"] == original["source"]


def test_the_copy_records_who_and_why(copy: Protocol, clinic_admin: Any) -> None:
    created = copy.history.get()
    assert created.history_user == clinic_admin
    assert created.history_change_reason == "copied from hydroxo-uk-standard for Riverside Haematology"


def test_a_second_copy_gets_its_own_code(copy: Protocol, admin_api: APIClient) -> None:
    response = admin_api.post(f"/api/protocols/{SHARED}/copy/", {"name": "Second variant"}, format="json")
    assert response.status_code == 201
    assert response.json()["code"] == f"{copy.code}-2"
    assert response.json()["name"] == "Second variant"


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN])
def test_only_a_clinic_admin_copies(clinic: Any, role: str) -> None:
    api = client_for(staff_user(clinic, role, username=f"a-{role}"))
    assert api.post(f"/api/protocols/{SHARED}/copy/", {}, format="json").status_code == 403
    assert not Protocol.objects.filter(clinic=clinic).exists()


def test_a_copy_cannot_be_copied_again(copy: Protocol, admin_api: APIClient) -> None:
    response = admin_api.post(f"/api/protocols/{copy.code}/copy/", {}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["protocol"]


# --- Localising a phase --------------------------------------------------------------------------------


def test_it_changes_a_phase_of_the_copy_within_its_range(copy: Protocol, admin_api: APIClient) -> None:
    response = admin_api.patch(
        f"/api/protocols/{copy.code}/phases/maintenance/", {"spacing_value": 8, "reason": "our clinic"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert phase_of(response.json(), "maintenance")["spacing_value"] == 8
    assert Protocol.objects.get(code=SHARED).phases.get(key="maintenance").spacing_value == 12
    change = copy.phases.get(key="maintenance").history.order_by("-history_id").first()
    assert change is not None and change.history_change_reason == "our clinic"


def test_numbers_outside_the_range_are_a_400_naming_each_field_and_nothing_is_written(
    copy: Protocol, admin_api: APIClient
) -> None:
    # Maintenance: spacing 8-13 weeks (R-UK-3a); the dose has no range, so it stays 1000 mcg.
    response = admin_api.patch(
        f"/api/protocols/{copy.code}/phases/maintenance/",
        {"spacing_value": 14, "dose_mcg": 2000, "prompt": "Book the next one"},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"spacing_value", "dose_mcg"}
    assert "8–13" in errors["spacing_value"][0]
    assert "no range" in errors["dose_mcg"][0]
    maintenance = copy.phases.get(key="maintenance")
    assert (maintenance.spacing_value, maintenance.dose_mcg, maintenance.prompt) == (12, 1000, "")


def test_dose_and_count_stay_within_the_label_ranges(clinic: Any, clinic_admin: Any, admin_api: APIClient) -> None:
    # hydroxo-us-label (R-US-2): 5-10 daily doses, monthly 100-200 mcg.
    label = services.protocol_copy(
        protocol=Protocol.objects.get(code="hydroxo-us-label"), clinic=clinic, by=clinic_admin
    )
    url = f"/api/protocols/{label.code}/phases/"
    assert admin_api.patch(url + "daily/", {"end_value": 11}, format="json").json() == {
        "end_value": ["must be within the phase's range: 5–10"]
    }
    assert admin_api.patch(url + "monthly/", {"dose_mcg": 250}, format="json").status_code == 400
    assert admin_api.patch(url + "daily/", {"end_value": 10}, format="json").status_code == 200
    assert admin_api.patch(url + "monthly/", {"dose_mcg": 200}, format="json").status_code == 200
    assert (label.phases.get(key="daily").end_value, label.phases.get(key="monthly").dose_mcg) == (10, 200)


def test_the_review_interval_and_prompt_of_the_neuro_loading_phase(
    clinic: Any, clinic_admin: Any, admin_api: APIClient
) -> None:
    neuro = services.protocol_copy(
        protocol=Protocol.objects.get(code="hydroxo-uk-neuro"), clinic=clinic, by=clinic_admin
    )
    url = f"/api/protocols/{neuro.code}/phases/"

    assert admin_api.patch(url + "loading/", {"review_every_days": 10}, format="json").status_code == 200
    # RULES §1.3: a review within 21 days (COBALT NEURO_REVIEW_MEDIUM_AFTER_DAYS), and a review prompt stays.
    assert list(admin_api.patch(url + "loading/", {"review_every_days": 30}, format="json").json()) == [
        "review_every_days"
    ]
    assert list(admin_api.patch(url + "loading/", {"review_every_days": None}, format="json").json()) == [
        "review_every_days"
    ]
    assert list(admin_api.patch(url + "maintenance/", {"review_every_days": 14}, format="json").json()) == [
        "review_every_days"
    ]
    # The specialist-advice prompt (§1.3 rule 4) can be reworded, not removed.
    assert list(admin_api.patch(url + "loading/", {"prompt": "  "}, format="json").json()) == ["prompt"]
    reworded = admin_api.patch(url + "loading/", {"prompt": "Call the haematology registrar today."}, format="json")
    assert reworded.status_code == 200
    loading = neuro.phases.get(key="loading")
    assert (loading.review_every_days, loading.prompt) == (10, "Call the haematology registrar today.")


def test_fields_a_clinic_cannot_change_are_refused(copy: Protocol, admin_api: APIClient) -> None:
    response = admin_api.patch(f"/api/protocols/{copy.code}/phases/maintenance/", {"route": "SC"}, format="json")
    assert response.status_code == 400  # nothing to change: route is not a clinic's to localise
    assert copy.phases.get(key="maintenance").route == "IM"


def test_a_shared_protocol_is_never_changed_through_the_api(admin_api: APIClient) -> None:
    response = admin_api.patch(f"/api/protocols/{SHARED}/phases/maintenance/", {"spacing_value": 8}, format="json")
    assert response.status_code == 403
    assert Protocol.objects.get(code=SHARED).phases.get(key="maintenance").spacing_value == 12
    assert admin_api.post(f"/api/protocols/{SHARED}/retire/", {}, format="json").status_code == 403
    assert Protocol.objects.get(code=SHARED).active


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN])
def test_only_a_clinic_admin_changes_or_retires_the_copy(copy: Protocol, clinic: Any, role: str) -> None:
    api = client_for(staff_user(clinic, role, username=f"b-{role}"))
    url = f"/api/protocols/{copy.code}/"
    assert api.patch(url + "phases/maintenance/", {"spacing_value": 8}, format="json").status_code == 403
    assert api.post(url + "retire/", {}, format="json").status_code == 403
    copy.refresh_from_db()
    assert copy.active and copy.phases.get(key="maintenance").spacing_value == 12


# --- Using the copy ------------------------------------------------------------------------------------


def test_the_clinics_staff_see_and_start_a_regimen_on_the_copy(
    copy: Protocol, clinician_api: APIClient, patient: Any, admin_api: APIClient, clock: Any
) -> None:
    admin_api.patch(f"/api/protocols/{copy.code}/phases/maintenance/", {"spacing_value": 8}, format="json")

    codes = [p["code"] for p in clinician_api.get("/api/protocols/", {"page_size": 100}).json()["results"]]
    assert copy.code in codes and SHARED in codes
    preview = clinician_api.post(
        "/api/schedule/preview/", {"protocol": copy.code, "start_date": str(T0)}, format="json"
    )
    assert preview.status_code == 200
    started = clinician_api.post(
        "/api/regimens/", {"patient": patient.pk, "protocol": copy.code, "start_date": str(T0)}, format="json"
    )

    assert started.status_code == 201, started.content
    assert started.json()["protocol"] == copy.code
    regimen = Regimen.objects.get(pk=started.json()["id"])
    maintenance = next(p for p in regimen.protocol_snapshot["phases"] if p["key"] == "maintenance")
    assert maintenance["spacing_value"] == 8


def test_a_running_regimen_keeps_its_snapshot_after_the_copy_is_edited(
    copy: Protocol, patient: Any, admin_api: APIClient, clock: Any
) -> None:
    regimen = services.regimen_start(patient=patient, protocol=copy, start_date=T0)
    planned = sorted(regimen.doses.values_list("due_date", flat=True))

    admin_api.patch(f"/api/protocols/{copy.code}/phases/maintenance/", {"spacing_value": 8}, format="json")
    services.regimen_replan(regimen=regimen)

    regimen.refresh_from_db()
    maintenance = next(p for p in regimen.protocol_snapshot["phases"] if p["key"] == "maintenance")
    assert maintenance["spacing_value"] == 12
    assert sorted(regimen.doses.filter(status="planned").values_list("due_date", flat=True)) == planned


def test_a_retired_copy_starts_no_regimen_and_running_ones_go_on(
    copy: Protocol, patient: Any, admin_api: APIClient, clinician_api: APIClient, clock: Any
) -> None:
    running = services.regimen_start(patient=patient, protocol=copy, start_date=T0)

    retired = admin_api.post(f"/api/protocols/{copy.code}/retire/", {"reason": "back to shared"}, format="json")

    assert retired.status_code == 200 and retired.json()["active"] is False
    running.refresh_from_db()
    assert running.status == RegimenStatus.ACTIVE
    other = PatientFactory(clinic=patient.clinic)
    response = clinician_api.post(
        "/api/regimens/", {"patient": other.pk, "protocol": copy.code, "start_date": str(T0)}, format="json"
    )
    assert response.status_code == 400 and list(response.json()) == ["protocol"]


# --- Another clinic ------------------------------------------------------------------------------------


def test_another_clinic_cannot_see_use_or_copy_the_copy(
    copy: Protocol, intruder_api: APIClient, other_patient: Any, clock: Any
) -> None:
    unknown = "no-such-protocol"
    listed = intruder_api.get("/api/protocols/", {"page_size": 100}).json()["results"]
    assert copy.code not in [p["code"] for p in listed] and SHARED in [p["code"] for p in listed]
    for ref in (copy.code, str(copy.pk)):
        assert (
            intruder_api.get(f"/api/protocols/{ref}/").json() == intruder_api.get(f"/api/protocols/{unknown}/").json()
        )
        assert intruder_api.get(f"/api/protocols/{ref}/").status_code == 404
        assert intruder_api.post(f"/api/protocols/{ref}/copy/", {}, format="json").status_code == 404
        assert intruder_api.post(f"/api/protocols/{ref}/retire/", {}, format="json").status_code == 404
        patched = intruder_api.patch(f"/api/protocols/{ref}/phases/maintenance/", {"spacing_value": 8}, format="json")
        assert patched.status_code == 404

    def refused(code: str) -> list[Any]:
        preview = intruder_api.post("/api/schedule/preview/", {"protocol": code, "start_date": str(T0)}, format="json")
        start = intruder_api.post(
            "/api/regimens/", {"patient": other_patient.pk, "protocol": code, "start_date": str(T0)}, format="json"
        )
        return [preview.status_code, preview.json(), start.status_code, start.json()]

    theirs, nobody = refused(copy.code), refused(unknown)
    assert theirs[0] == theirs[2] == 400
    assert [theirs[1], theirs[3]] == [
        {"protocol": [f"Unknown protocol '{copy.code}'; see GET /api/protocols/ for the codes."]}
    ] * 2
    assert [nobody[1], nobody[3]] == [
        {"protocol": [f"Unknown protocol '{unknown}'; see GET /api/protocols/ for the codes."]}
    ] * 2
    assert not Regimen.objects.filter(protocol=copy).exists()
    copy.refresh_from_db()
    assert copy.active and copy.phases.get(key="maintenance").spacing_value == 12


def test_the_clinic_filter_of_the_protocol_list_does_not_tell_another_clinic_from_none(
    copy: Protocol, intruder_api: APIClient, clinic: Any, admin_api: APIClient
) -> None:
    theirs = intruder_api.get("/api/protocols/", {"clinic": clinic.pk})
    unknown = intruder_api.get("/api/protocols/", {"clinic": clinic.pk + 1000})
    assert theirs.status_code == unknown.status_code == 400
    assert list(theirs.json()) == ["clinic"]
    mine = admin_api.get("/api/protocols/", {"clinic": clinic.pk}).json()["results"]
    assert [p["code"] for p in mine] == [copy.code]


def test_a_copy_serves_only_its_own_clinics_patients(copy: Protocol, other_clinic: Any, clock: Any) -> None:
    """Someone working in both clinics sees the copy, but it is the first clinic's protocol: not for the other's
    patients (the service refuses it whoever calls)."""
    both = staff_user(copy.clinic, Role.CLINICIAN, username="both")  # type: ignore[arg-type]
    both.memberships.create(clinic=other_clinic, role=Role.CLINICIAN)
    other = PatientFactory(clinic=other_clinic)
    response = client_for(both).post(
        "/api/regimens/", {"patient": other.pk, "protocol": copy.code, "start_date": str(T0)}, format="json"
    )
    assert response.status_code == 400
    assert "another clinic's own protocol" in response.json()["protocol"][0]


def test_the_clinics_audit_log_shows_who_copied_and_changed_its_protocol(
    copy: Protocol, admin_api: APIClient, clinic_admin: Any, intruder_api: APIClient
) -> None:
    admin_api.patch(
        f"/api/protocols/{copy.code}/phases/maintenance/", {"spacing_value": 8, "reason": "our clinic"}, format="json"
    )

    changed = admin_api.get("/api/audit/", {"kind": "protocol_phase"}).json()["results"][0]
    assert (changed["action"], changed["actor"]["username"], changed["reason"]) == (
        "changed", clinic_admin.username, "our clinic",
    )  # fmt: skip
    assert {c["field"]: (c["from"], c["to"]) for c in changed["changes"]} == {"spacing_value": (12, 8)}
    created = admin_api.get("/api/audit/", {"kind": "protocol"}).json()["results"]
    assert [(e["action"], e["record"]["id"]) for e in created] == [("created", copy.pk)]
    assert intruder_api.get("/api/audit/", {"kind": ["protocol", "protocol_phase"]}).json()["count"] == 0
