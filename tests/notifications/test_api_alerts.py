"""API: alerts (list, filters, ordering, read, acknowledge; RULES §3.6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from notifications.models import Alert
from tests.conftest import client_for
from tests.factories import PatientFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

NOW = "2027-01-10 09:00:00+00:00"


def alert(patient: Any, kind: str = "hemoglobin_not_normalized", severity: str = "high", **extra: Any) -> Alert:
    values: dict[str, Any] = {
        "rule_id": "A-H4",
        "message": "Hemoglobin has not normalised at 8 weeks.",
        "action_text": "Check ferritin and folate (L-9).",
        "evidence": {"hemoglobin": [{"value": 98, "collected_at": "2027-01-08"}]},
        "opened_at": datetime(2027, 1, 9, 8, 0, tzinfo=UTC),
        **extra,
    }
    return Alert.objects.create(patient=patient, kind=kind, severity=severity, **values)


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_it_shows_an_alert_with_its_evidence_and_action(api: APIClient, patient: Any) -> None:
    shown = alert(patient)

    body = api.get(f"/api/alerts/{shown.pk}/").json()

    assert body["kind"] == "hemoglobin_not_normalized"
    assert body["rule_id"] == "A-H4"
    assert (body["severity"], body["status"]) == ("high", "open")
    assert body["evidence"] == {"hemoglobin": [{"value": 98, "collected_at": "2027-01-08"}]}
    assert body["action_text"] == "Check ferritin and folate (L-9)."
    assert body["opened_at"] == "2027-01-09T08:00:00Z"
    assert body["acknowledged"] is None and body["resolved"] is None
    assert body["patient"] == patient.pk and body["clinic"] == patient.clinic_id
    assert patient.mrn in body["patient_name"]


@time_machine.travel(NOW, tick=False)
def test_it_records_who_acknowledged_an_alert_and_what_they_did(api: APIClient, patient: Any) -> None:
    shown = alert(patient)

    response = api.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "ferritin ordered"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged"] == {"by": "nurse", "at": "2027-01-10T09:00:00Z", "note": "ferritin ordered"}
    shown.refresh_from_db()
    assert (shown.status, shown.acknowledgement_note, shown.acknowledged_by.username) == (
        "acknowledged",
        "ferritin ordered",
        "nurse",
    )


def test_a_critical_alert_needs_a_note(api: APIClient, patient: Any) -> None:
    critical = alert(patient, kind="pseudo_tma_pattern", severity="critical", rule_id="S-3")

    for body in ({}, {"note": "   "}):
        refused = api.post(f"/api/alerts/{critical.pk}/acknowledge/", body, format="json")
        assert refused.status_code == 400
        assert "note" in refused.json()
    critical.refresh_from_db()
    assert critical.status == "open"

    done = api.post(f"/api/alerts/{critical.pk}/acknowledge/", {"note": "ADAMTS13 sent, haematology called"})
    assert done.status_code == 200, done.json()


def test_a_non_critical_alert_may_be_acknowledged_without_a_note(api: APIClient, patient: Any) -> None:
    shown = alert(patient, severity="medium")

    response = api.post(f"/api/alerts/{shown.pk}/acknowledge/", {}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["acknowledged"]["note"] == ""


def test_a_resolved_alert_cannot_be_acknowledged(api: APIClient, patient: Any) -> None:
    resolved = alert(
        patient, status="resolved", resolved_at=datetime(2027, 1, 9, 12, 0, tzinfo=UTC), resolution="Hb normal"
    )

    response = api.post(f"/api/alerts/{resolved.pk}/acknowledge/", {"note": "seen"}, format="json")

    assert response.status_code == 409
    assert "status" in response.json()
    resolved.refresh_from_db()
    assert resolved.acknowledged_at is None
    shown = api.get(f"/api/alerts/{resolved.pk}/").json()
    assert shown["resolved"] == {"at": "2027-01-09T12:00:00Z", "resolution": "Hb normal"}


def test_a_repeated_acknowledgement_is_a_no_op_and_a_different_one_a_conflict(
    api: APIClient, patient: Any, clinic: Any
) -> None:
    shown = alert(patient)
    first = api.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "ferritin ordered"}, format="json")
    again = api.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "ferritin ordered"}, format="json")
    colleague = client_for(staff_user(clinic, "clinician", username="dr-b"))
    other = colleague.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "different"}, format="json")

    assert first.status_code == again.status_code == 200
    assert again.json()["acknowledged"] == first.json()["acknowledged"]
    assert other.status_code == 409
    assert "nurse" in other.json()["status"][0]
    shown.refresh_from_db()
    assert shown.acknowledgement_note == "ferritin ordered"


def test_it_filters_alerts(api: APIClient, patient: Any, clinic: Any) -> None:
    second = PatientFactory(clinic=clinic)
    hb = alert(patient)
    plt = alert(patient, kind="platelets_critical", severity="critical", rule_id="A-P3")
    done = alert(second, kind="dose_overdue", severity="medium", status="resolved", rule_id="S-4")
    acked = alert(second, kind="contraindication", status="acknowledged", rule_id="S-11")

    assert set(ids(api.get(f"/api/alerts/?patient={patient.pk}"))) == {hb.pk, plt.pk}
    assert ids(api.get("/api/alerts/?kind=platelets_critical")) == [plt.pk]
    assert set(ids(api.get("/api/alerts/?status=open&status=acknowledged"))) == {hb.pk, plt.pk, acked.pk}
    assert ids(api.get("/api/alerts/?status=resolved")) == [done.pk]
    assert set(ids(api.get("/api/alerts/?severity=high"))) == {hb.pk, acked.pk}
    assert len(ids(api.get(f"/api/alerts/?clinic={clinic.pk}"))) == 4
    for bad in ("kind=bogus", "severity=urgent", "status=closed", "ordering=random", "clinic=x"):
        response = api.get(f"/api/alerts/?{bad}")
        assert response.status_code == 400, bad
        assert bad.split("=")[0] in response.json()


def test_it_orders_alerts_newest_first_or_most_severe_first(api: APIClient, patient: Any) -> None:
    old_critical = alert(
        patient, kind="platelets_critical", severity="critical", opened_at=datetime(2027, 1, 1, tzinfo=UTC)
    )
    new_medium = alert(
        patient, kind="mcv_not_normalized", severity="medium", opened_at=datetime(2027, 1, 9, tzinfo=UTC)
    )
    mid_high = alert(patient, kind="ldh_not_falling", severity="high", opened_at=datetime(2027, 1, 5, tzinfo=UTC))
    info = alert(patient, kind="platelets_rebound", severity="info", opened_at=datetime(2027, 1, 8, tzinfo=UTC))

    assert ids(api.get("/api/alerts/")) == [new_medium.pk, info.pk, mid_high.pk, old_critical.pk]
    assert ids(api.get("/api/alerts/?ordering=oldest")) == [old_critical.pk, mid_high.pk, info.pk, new_medium.pk]
    assert ids(api.get("/api/alerts/?ordering=most_severe")) == [old_critical.pk, mid_high.pk, new_medium.pk, info.pk]


def test_it_keeps_alerts_within_the_clinic(api: APIClient, other_clinic: Any) -> None:
    theirs = alert(PatientFactory(clinic=other_clinic))

    assert ids(api.get("/api/alerts/")) == []
    assert ids(api.get(f"/api/alerts/?clinic={other_clinic.pk}")) == []
    assert api.get(f"/api/alerts/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/alerts/{theirs.pk}/acknowledge/", {"note": "x"}, format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"


def test_only_clinic_staff_may_see_alerts(anon_api: APIClient, patient: Any) -> None:
    shown = alert(patient)

    assert anon_api.get("/api/alerts/").status_code == 401
    assert anon_api.post(f"/api/alerts/{shown.pk}/acknowledge/", {}, format="json").status_code == 401
    outsider = client_for(UserFactory(username="no-clinic"))
    assert outsider.get("/api/alerts/").status_code == 403
    assert outsider.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "x"}, format="json").status_code == 403


def test_alerts_are_read_only_apart_from_acknowledging(api: APIClient, patient: Any) -> None:
    shown = alert(patient)

    assert api.post("/api/alerts/", {"patient": patient.pk}, format="json").status_code == 405
    assert api.patch(f"/api/alerts/{shown.pk}/", {"status": "resolved"}, format="json").status_code == 405
    assert api.delete(f"/api/alerts/{shown.pk}/").status_code == 405


def test_it_lists_alerts_in_a_constant_number_of_queries(
    api: APIClient, patient: Any, clinic: Any, django_assert_max_num_queries: Any
) -> None:
    for kind in ("hemoglobin_not_normalized", "platelets_critical", "ldh_not_falling"):
        shown = alert(PatientFactory(clinic=clinic), kind=kind)
        api.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "seen"}, format="json")
    api.get("/api/alerts/")  # warm the user's clinic cache

    with django_assert_max_num_queries(6):
        assert len(ids(api.get("/api/alerts/"))) == 3


# --- RULES §10 V-2: target met, closed by a person; V-3: reopened ----------------------------------------

MET_AT = datetime(2027, 1, 9, 12, 0, tzinfo=UTC)
MET = {"id": 41, "analyte": "platelets", "value": "120", "unit": "10^9/L", "collected_on": "2027-01-09"}


def test_it_shows_no_target_met_until_a_later_result_meets_the_target(api: APIClient, patient: Any) -> None:
    shown = alert(patient, kind="platelets_critical", severity="critical", rule_id="A-P3")

    body = api.get(f"/api/alerts/{shown.pk}/").json()

    assert body["target_met"] is None and body["reopened_at"] is None


@time_machine.travel(NOW, tick=False)
def test_acknowledging_a_critical_alert_whose_target_is_met_closes_it(api: APIClient, patient: Any) -> None:
    shown = alert(
        patient, kind="platelets_critical", severity="critical", rule_id="A-P3", target_met_at=MET_AT,
        target_met_evidence=MET,
    )  # fmt: skip
    listed = api.get("/api/alerts/?status=open").json()["results"]
    assert [(a["id"], a["target_met"]) for a in listed] == [(shown.pk, {"at": "2027-01-09T12:00:00Z", "evidence": MET})]

    done = api.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "Recovered, GP told"}, format="json")
    again = api.post(f"/api/alerts/{shown.pk}/acknowledge/", {"note": "Recovered, GP told"}, format="json")

    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["status"] == "resolved"
    assert body["acknowledged"] == {"by": "nurse", "at": "2027-01-10T09:00:00Z", "note": "Recovered, GP told"}
    assert body["resolved"]["at"] == "2027-01-10T09:00:00Z"
    assert "closed on acknowledgement" in body["resolved"]["resolution"]
    assert body["target_met"]["evidence"] == MET
    assert again.status_code == 200 and again.json() == body  # the same acknowledgement again: a no-op


def test_the_schema_describes_target_met_as_a_nullable_object(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    target_met = schema["components"]["schemas"]["Alert"]["properties"]["target_met"]

    assert (target_met["type"], target_met["nullable"]) == ("object", True)
    assert "allOf" not in target_met and "$ref" not in target_met
    assert set(target_met["properties"]) == {"at", "evidence"}
    assert {"id", "analyte", "value", "unit", "collected_on"} <= set(target_met["properties"]["evidence"]["properties"])
