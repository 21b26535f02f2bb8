"""The life of an alert (notifications/alerts.py): a critical alert whose target is met waits for a person
(RULES §10 V-2); new evidence reopens an acknowledged alert and staff hear about it as if new (V-3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifications.alerts import alert_acknowledge, alert_close, alert_raise, evidence_refs
from notifications.models import Alert, Delivery
from patients.models import Clinic, Patient, Role
from tests.factories import UserFactory, staff_user
from tracker import sweeps

pytestmark = pytest.mark.django_db

OPENED = datetime(2027, 1, 4, 12, tzinfo=UTC)  # Monday noon (GMT = London time)
MET = {"id": 7, "analyte": "platelets", "value": "120", "unit": "10^9/L", "collected_on": "2027-01-14"}


def raise_alert(
    patient: Patient, severity: str = "critical", result_ids: tuple[int, ...] = (1,), at: datetime = OPENED, **kw: Any
) -> Alert:
    alert, _created = alert_raise(
        patient=patient,
        kind=kw.pop("kind", "platelets_critical"),
        severity=severity,
        message=f"Platelets low (results {list(result_ids)}).",
        action_text="Review today.",
        evidence={"analyte": "platelets", "result_ids": list(result_ids), **kw},
        rule_id="A-P3",
        at=at,
    )
    return alert


def fresh(alert: Alert) -> Alert:
    return Alert.objects.get(pk=alert.pk)


def alert_messages(alert: Alert) -> list[tuple[str, str]]:
    return sorted(
        (d.user.username if d.user else "", d.channel) for d in Delivery.objects.filter(purpose="alert", alert=alert)
    )


# --- V-2: target met --------------------------------------------------------------------------------------


@pytest.mark.parametrize("severity", ["info", "medium", "high"])
def test_it_resolves_a_non_critical_alert_whose_target_is_met(patient: Patient, severity: str) -> None:
    alert = raise_alert(patient, severity)

    assert alert_close(
        alert=alert, resolution="target met", at=OPENED + timedelta(days=1), target_met_evidence=MET
    ) == ("resolved")

    alert = fresh(alert)
    assert (alert.status, alert.resolution, alert.target_met_at) == ("resolved", "target met", None)


def test_it_keeps_a_critical_alert_open_showing_the_result_that_met_its_target(patient: Patient) -> None:
    alert = raise_alert(patient)
    met_at = OPENED + timedelta(days=10)

    assert alert_close(alert=alert, resolution="target met", at=met_at, target_met_evidence=MET) == "target_met"

    alert = fresh(alert)
    assert alert.status == "open" and alert.resolved_at is None
    assert (alert.target_met_at, alert.target_met_evidence) == (met_at, MET)


def test_it_keeps_the_first_target_met_when_the_target_is_met_again(patient: Patient) -> None:
    alert = raise_alert(patient)
    alert_close(alert=alert, resolution="target met", at=OPENED + timedelta(days=10), target_met_evidence=MET)
    history = alert.history.count()

    later = {**MET, "id": 8, "value": "160"}
    assert (
        alert_close(
            alert=fresh(alert), resolution="target met", at=OPENED + timedelta(days=12), target_met_evidence=later
        )
        == ""
    )

    alert = fresh(alert)
    assert alert.target_met_evidence == MET and alert.history.count() == history


def test_it_closes_a_critical_alert_whose_target_is_met_when_a_person_acknowledges_it(
    patient: Patient, nurse: Any
) -> None:
    alert = raise_alert(patient)
    alert_close(alert=alert, resolution="target met", at=OPENED + timedelta(days=10), target_met_evidence=MET)

    alert = alert_acknowledge(
        alert=fresh(alert), user=nurse, note="Recovered; haematology informed", at=OPENED + timedelta(days=11)
    )

    alert = fresh(alert)
    assert alert.status == "resolved" and alert.resolved_at == OPENED + timedelta(days=11)
    assert (alert.acknowledged_by, alert.acknowledgement_note) == (nurse, "Recovered; haematology informed")
    assert (
        alert.resolution == "target met (platelets 120 10^9/L on 2027-01-14); closed on acknowledgement (RULES §10 V-2)"
    )


def test_acknowledging_a_critical_alert_whose_target_is_not_met_keeps_it_acknowledged(
    patient: Patient, nurse: Any
) -> None:
    alert = alert_acknowledge(alert=raise_alert(patient), user=nurse, note="Admitted", at=OPENED + timedelta(hours=1))

    assert fresh(alert).status == "acknowledged" and fresh(alert).resolved_at is None


def test_it_resolves_an_acknowledged_critical_alert_when_its_target_is_met_later(patient: Patient, nurse: Any) -> None:
    # Decision (needs clinical sign-off): a person has already seen it, so the later result closes it.
    alert = alert_acknowledge(alert=raise_alert(patient), user=nurse, note="Admitted", at=OPENED + timedelta(hours=1))

    done = alert_close(
        alert=fresh(alert), resolution="target met", at=OPENED + timedelta(days=10), target_met_evidence=MET
    )

    alert = fresh(alert)
    assert done == "resolved" and alert.status == "resolved"
    assert alert.target_met_evidence == MET
    assert alert.resolution == "target met; acknowledged before by nurse (RULES §10 V-2)"


def test_it_clears_target_met_when_the_problem_comes_back_before_acknowledgement(patient: Patient) -> None:
    alert = raise_alert(patient, result_ids=(1,))
    alert_close(alert=alert, resolution="target met", at=OPENED + timedelta(days=10), target_met_evidence=MET)

    raise_alert(patient, result_ids=(9,), at=OPENED + timedelta(days=12))

    alert = fresh(alert)
    assert alert.status == "open" and alert.target_met_at is None and alert.target_met_evidence == {}
    assert alert.evidence["result_ids"] == [9]


# --- V-3: new evidence reopens ----------------------------------------------------------------------------


def test_it_reopens_an_acknowledged_alert_on_new_evidence_and_keeps_who_acknowledged_it_in_the_history(
    patient: Patient, nurse: Any, clinician: Any
) -> None:
    alert = raise_alert(patient, result_ids=(1,))
    alert_acknowledge(alert=alert, user=nurse, note="Admitted", at=OPENED + timedelta(hours=1))
    reopened_at = OPENED + timedelta(days=2)

    raise_alert(patient, result_ids=(2,), at=reopened_at)

    alert = fresh(alert)
    assert alert.status == "open" and alert.reopened_at == reopened_at
    assert (alert.acknowledged_at, alert.acknowledged_by, alert.acknowledgement_note) == (None, None, "")
    assert alert.evidence["result_ids"] == [2]
    assert Alert.objects.filter(patient=patient, kind="platelets_critical").count() == 1
    before = alert.history.filter(status="acknowledged").first()
    assert before is not None and (before.acknowledged_by_id, before.acknowledgement_note) == (nurse.pk, "Admitted")


def test_it_notifies_staff_again_when_an_alert_is_reopened(patient: Patient, nurse: Any, clinician: Any) -> None:
    alert = raise_alert(patient, result_ids=(1,))
    first = alert_messages(alert)
    alert_acknowledge(alert=alert, user=nurse, note="Admitted", at=OPENED + timedelta(hours=1))

    raise_alert(patient, result_ids=(2,), at=OPENED + timedelta(days=2))

    assert alert_messages(alert) == sorted(first * 2)
    reopened = Delivery.objects.get(purpose="alert", alert=alert, user=clinician, channel="inbox", due_at__gt=OPENED)
    assert reopened.due_at == OPENED + timedelta(days=2)
    assert "REOPENED" in reopened.subject
    assert "acknowledged by nurse on 2027-01-04 13:00 UTC" in reopened.body and '("Admitted")' in reopened.body


def test_the_same_evidence_again_does_not_reopen_or_notify(patient: Patient, nurse: Any) -> None:
    alert = raise_alert(patient, result_ids=(1, 2))
    alert_acknowledge(alert=alert, user=nurse, note="Admitted", at=OPENED + timedelta(hours=1))
    messages, history = Delivery.objects.count(), alert.history.count()

    raise_alert(patient, result_ids=(2,), at=OPENED + timedelta(days=2))  # nothing the alert did not show
    raise_alert(patient, result_ids=(1, 2), at=OPENED + timedelta(days=3), day=12)  # other keys are no event

    alert = fresh(alert)
    assert alert.status == "acknowledged" and alert.acknowledged_by == nurse
    assert (Delivery.objects.count(), alert.history.count()) == (messages, history)


def test_a_higher_severity_reopens_an_acknowledged_alert(patient: Patient, nurse: Any, clinician: Any) -> None:
    alert = raise_alert(patient, "medium", kind="platelets_not_normalized")
    assert alert_messages(alert) == []  # medium: the digest
    alert_acknowledge(alert=alert, user=nurse, note="Repeat ordered", at=OPENED + timedelta(hours=1))

    raise_alert(patient, "high", kind="platelets_not_normalized", at=OPENED + timedelta(days=1))

    alert = fresh(alert)
    assert (alert.status, alert.severity) == ("open", "high")
    assert ("clinician", "inbox") in alert_messages(alert)
    assert len(alert_messages(alert)) == len(set(alert_messages(alert)))  # reopened, not also "severity raised"


def test_a_reopened_medium_alert_is_in_the_digest_of_its_reopening(patient: Patient, nurse: Any) -> None:
    alert = raise_alert(patient, "medium", kind="platelets_not_normalized")
    alert_acknowledge(alert=alert, user=nurse, note="Repeat ordered", at=OPENED + timedelta(hours=1))
    sweeps.run("staff", datetime(2027, 1, 5, 8, tzinfo=UTC))  # the digest of the opening day
    reopened_at = datetime(2027, 1, 8, 12, tzinfo=UTC)
    raise_alert(patient, "medium", kind="platelets_not_normalized", result_ids=(5,), at=reopened_at)

    sweeps.run("staff", datetime(2027, 1, 9, 8, tzinfo=UTC))

    digest = Delivery.objects.get(
        purpose="digest", user=nurse, channel="inbox", due_at=datetime(2027, 1, 9, 8, tzinfo=UTC)
    )
    assert "platelets_not_normalized" in digest.body and "reopened 2027-01-08 12:00" in digest.body


def test_escalation_counts_again_from_the_reopening(patient: Patient, nurse: Any) -> None:
    lead = UserFactory(username="lead")
    Clinic.objects.filter(pk=patient.clinic_id).update(lead=lead)
    staff_user(patient.clinic, Role.ADMIN, username="admin1")
    alert = raise_alert(patient)
    assert sweeps.run("staff", OPENED + timedelta(hours=1))["escalated"] == 1
    alert_acknowledge(alert=fresh(alert), user=nurse, note="Admitted", at=OPENED + timedelta(hours=2))
    reopened_at = OPENED + timedelta(days=2)
    raise_alert(patient, result_ids=(2,), at=reopened_at)

    assert sweeps.run("staff", reopened_at + timedelta(minutes=59))["escalated"] == 0
    assert sweeps.run("staff", reopened_at + timedelta(hours=1))["escalated"] == 1
    assert Delivery.objects.filter(purpose="escalation", user=lead).count() == 4  # email + inbox, twice


def test_it_names_the_records_an_evidence_shows() -> None:
    evidence = {
        "result_ids": [1, 2],
        "baseline_result_ids": [3],
        "fact_ids": [4],
        "dose_id": 5,
        "results": [{"id": 6, "analyte": "ldh"}],
        "rechecks": [{"id": 7, "rule": "L-7"}],
        "days_overdue": 30,
    }
    assert evidence_refs(evidence) == {
        ("result", 1), ("result", 2), ("fact", 4), ("dose", 5), ("result", 6), ("recheck", 7),
    }  # fmt: skip


def test_an_override_on_another_dose_reopens_an_acknowledged_override_alert(patient: Patient, nurse: Any) -> None:
    # S-2 overridden at one dose, acknowledged, then overridden again at the next dose (D-41, V-3).
    def override(dose_id: int, at: datetime) -> Alert:
        alert, _created = alert_raise(
            patient=patient,
            kind="im_injection_low_platelets",
            severity="high",
            message="Acknowledged and overridden: IM injection with platelets 45.",
            evidence={"warnings": [{"code": "im_injection_low_platelets"}], "dose_id": dose_id, "regimen_id": 3},
            rule_id="S-2",
            at=at,
        )
        return alert

    alert = override(41, OPENED)
    alert_acknowledge(alert=alert, user=nurse, note="No bleeding", at=OPENED + timedelta(hours=1))
    override(41, OPENED + timedelta(hours=2))  # the same dose again (a retried request): nothing new
    assert fresh(alert).status == "acknowledged"

    override(42, OPENED + timedelta(days=2))

    assert fresh(alert).status == "open" and fresh(alert).evidence["dose_id"] == 42
