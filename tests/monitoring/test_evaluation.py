"""Monitoring evaluation): results entered through the API raise, dedupe and resolve alerts
(RULES §3.3-§3.6) and the evaluation-time safety rules (S-3, S-6(b), S-9, S-13, S-15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import time_machine

from monitoring.evaluation import evaluate_patient
from monitoring.rules.patterns import S3_ADAMTS13_TEXT, S3_BANNER
from notifications.alerts import alert_acknowledge
from notifications.models import Alert, Delivery
from patients.models import Patient, PatientFact
from regimens.models import LabRecheck, Protocol, RecheckStatus
from regimens.services import regimen_replan, regimen_start
from tests.factories import PatientFactory
from tests.monitoring.conftest import Enter
from tests.timeline import T0, day, noon, start_treatment

pytestmark = pytest.mark.django_db


def new_patient(**fields: Any) -> Patient:
    return cast(Patient, PatientFactory(**fields))


def open_alerts(patient: Patient) -> dict[str, Alert]:
    return {a.kind: a for a in Alert.objects.filter(patient=patient).exclude(status="resolved")}


# --- A-H2 window boundaries (day 14 ± 3 = days 11..17), value at the limit -------------------------------


# RULES §10 V-8: day 18 used to be outside every window; with no Hb in days 11-17 it is now judged by A-H2.
@pytest.mark.parametrize(("on_day", "fires"), [(10, False), (11, True), (17, True), (18, True)])
def test_slow_hb_rise_fires_inside_its_window_or_after_it_was_missed(
    patient: Patient, enter: Enter, clock: Any, on_day: int, fires: bool
) -> None:
    start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)  # baseline (day 0), female LLN 120
    body = enter(patient, "hemoglobin", "105", "g/L", day(on_day))  # rise 5 < 10 g/L

    alert = open_alerts(patient).get("hemoglobin_slow_rise")
    assert (alert is not None) is fires
    if alert is not None:
        assert alert.severity == "medium"
        assert alert.rule_id == "A-H2"
        assert body["id"] in alert.evidence["result_ids"]
        assert alert.evidence["day"] == on_day
        assert alert.evidence.get("judged_late", False) is (on_day > 17)


def test_a_rise_exactly_at_the_limit_is_not_slow(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "hemoglobin", "10.0", "g/dL", T0)  # 100 g/L, entered in g/dL
    enter(patient, "hemoglobin", "110", "g/L", day(14))  # rise exactly 10 g/L

    assert "hemoglobin_slow_rise" not in open_alerts(patient)


@pytest.mark.parametrize(("sex", "fires"), [("male", True), ("female", False)])
def test_hb_not_normalized_uses_the_sex_specific_lln(clinic: Any, enter: Enter, sex: str, fires: bool) -> None:
    patient = new_patient(clinic=clinic, sex=sex)
    start_treatment(patient)
    enter(patient, "hemoglobin", "125", "g/L", day(56))  # male LLN 130, female 120

    assert ("hemoglobin_not_normalized" in open_alerts(patient)) is fires


def test_one_alert_per_kind_and_a_second_evaluation_changes_nothing(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "104", "g/L", day(13))
    enter(patient, "hemoglobin", "105", "g/L", day(14))

    assert Alert.objects.filter(patient=patient, kind="hemoglobin_slow_rise").count() == 1
    rechecks = list(LabRecheck.objects.filter(patient=patient).values_list("id", "status", "due_date"))
    alerts = list(Alert.objects.filter(patient=patient).values_list("id", "status", "severity"))
    summary = evaluate_patient(patient.pk)
    assert summary["raised"] == [] and summary["resolved"] == [] and summary["tasks"] == 0
    assert list(LabRecheck.objects.filter(patient=patient).values_list("id", "status", "due_date")) == rechecks
    assert list(Alert.objects.filter(patient=patient).values_list("id", "status", "severity")) == alerts


def test_platelet_alert_resolves_when_a_later_count_reaches_the_lln(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    enter(patient, "platelets", "140", "10^9/L", day(14))
    assert open_alerts(patient)["platelets_not_normalized"].severity == "high"

    enter(patient, "platelets", "150000", "/uL", day(18))  # exactly the LLN 150 x10^9/L

    assert "platelets_not_normalized" not in open_alerts(patient)
    resolved = Alert.objects.get(patient=patient, kind="platelets_not_normalized")
    assert resolved.status == "resolved" and resolved.resolved_at is not None


# --- §3.6 as revised by §10 V-2 (critical alerts wait for a person) and V-3 (new evidence reopens) ----------


def acknowledge(alert: Alert, user: Any, note: str = "Seen; haematology called") -> Alert:
    return alert_acknowledge(alert=Alert.objects.get(pk=alert.pk), user=user, note=note)


@pytest.mark.parametrize(
    ("kind", "analyte", "unit", "baseline", "low", "recovered"),
    [
        ("platelets_critical", "platelets", "10^9/L", "90", "15", "120"),  # A-P3: < 20, then recovered
        ("hemoglobin_falling", "hemoglobin", "g/L", "100", "65", "90"),  # A-H5: < 70, then recovered
    ],
)
def test_it_keeps_a_critical_alert_open_with_target_met_when_a_later_result_meets_the_target(
    patient: Patient, enter: Enter, kind: str, analyte: str, unit: str, baseline: str, low: str, recovered: str
) -> None:
    # This replaces the old §3.6 behaviour, where A-H5 and A-P3 closed by themselves (D-23).
    start_treatment(patient)
    enter(patient, analyte, baseline, unit, T0)
    enter(patient, analyte, low, unit, day(5))
    assert open_alerts(patient)[kind].severity == "critical"

    later = enter(patient, analyte, recovered, unit, day(10))

    alert = open_alerts(patient)[kind]
    assert alert.status == "open" and alert.resolved_at is None
    assert alert.target_met_at == noon(day(10)) + timedelta(hours=1)
    assert alert.target_met_evidence == {
        "id": later["id"],
        "analyte": analyte,
        "value": recovered,
        "unit": unit,
        "collected_on": day(10).isoformat(),
    }
    assert evaluate_patient(patient.pk)["target_met"] == []  # a second run changes nothing


def test_it_still_closes_a_high_alert_by_itself(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    enter(patient, "platelets", "140", "10^9/L", day(14))  # A-P2, high

    enter(patient, "platelets", "160", "10^9/L", day(16))

    closed = Alert.objects.get(patient=patient, kind="platelets_not_normalized")
    assert (closed.status, closed.target_met_at) == ("resolved", None)


def test_a_critical_alert_whose_target_is_met_closes_when_a_nurse_acknowledges_it(
    patient: Patient, enter: Enter, nurse: Any
) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    enter(patient, "platelets", "15", "10^9/L", day(5))
    enter(patient, "platelets", "120", "10^9/L", day(10))

    alert = acknowledge(open_alerts(patient)["platelets_critical"], nurse)

    assert alert.status == "resolved" and "closed on acknowledgement" in alert.resolution
    assert "platelets_critical" not in open_alerts(patient)


def test_target_met_is_cleared_when_the_fall_comes_back_before_acknowledgement(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    enter(patient, "platelets", "15", "10^9/L", day(5))
    enter(patient, "platelets", "120", "10^9/L", day(10))
    assert open_alerts(patient)["platelets_critical"].target_met_at is not None

    again = enter(patient, "platelets", "12", "10^9/L", day(12))

    alert = open_alerts(patient)["platelets_critical"]
    assert alert.status == "open" and alert.target_met_at is None and alert.target_met_evidence == {}
    assert alert.evidence["result_ids"] == [again["id"]]


def test_a_further_fall_reopens_an_acknowledged_critical_alert(patient: Patient, enter: Enter, nurse: Any) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    enter(patient, "platelets", "15", "10^9/L", day(5))
    acknowledge(open_alerts(patient)["platelets_critical"], nurse)

    enter(patient, "platelets", "8", "10^9/L", day(6))

    alert = open_alerts(patient)["platelets_critical"]
    assert alert.status == "open" and alert.acknowledged_by is None and alert.reopened_at is not None
    assert Alert.objects.filter(patient=patient, kind="platelets_critical").count() == 1


FALLS = pytest.mark.parametrize(
    ("kind", "analyte", "unit", "values"),
    [
        # A-H5: 110 -> 88 is a fall of 22 g/L; 76 is 12 lower again (not >= 20, not < 70): a further fall.
        ("hemoglobin_falling", "hemoglobin", "g/L", ("110", "88", "76")),
        # A-P3: 200 -> 130 is a 35 % fall to below the LLN; 95 is 27 % lower again: a further fall.
        ("platelets_critical", "platelets", "10^9/L", ("200", "130", "95")),
    ],
)


@FALLS
def test_a_further_fall_reopens_an_acknowledged_critical_alert_though_it_meets_no_clause_by_itself(
    patient: Patient, enter: Enter, nurse: Any, kind: str, analyte: str, unit: str, values: tuple[str, str, str]
) -> None:
    # RULES §10 V-3: "a further fall" is new evidence of the same problem; it used to close the alert instead.
    start_treatment(patient)
    enter(patient, analyte, values[0], unit, T0)
    enter(patient, analyte, values[1], unit, day(5))
    acknowledge(open_alerts(patient)[kind], nurse)

    lower = enter(patient, analyte, values[2], unit, day(8))

    alert = open_alerts(patient)[kind]
    assert (alert.status, alert.acknowledged_by, alert.target_met_at) == ("open", None, None)
    assert alert.reopened_at is not None and alert.evidence["result_ids"] == [lower["id"]]
    assert "a further fall after" in alert.message
    told = Delivery.objects.filter(alert=alert, purpose="alert", user=nurse, channel="inbox")
    assert told.count() == 2  # told again, as if new
    assert Alert.objects.filter(patient=patient, kind=kind).count() == 1


@FALLS
def test_a_critical_alert_still_falling_does_not_show_target_met_and_does_once_it_stops(
    patient: Patient, enter: Enter, kind: str, analyte: str, unit: str, values: tuple[str, str, str]
) -> None:
    start_treatment(patient)
    enter(patient, analyte, values[0], unit, T0)
    enter(patient, analyte, values[1], unit, day(5))
    enter(patient, analyte, values[2], unit, day(8))
    assert open_alerts(patient)[kind].target_met_at is None

    steady = enter(patient, analyte, values[2], unit, day(10))  # no lower: the fall has stopped

    alert = open_alerts(patient)[kind]
    assert alert.status == "open" and alert.target_met_evidence["id"] == steady["id"]


def enter_late(patient: Patient, api: Any, clock: Any, capture: Any, analyte: str, value: str, on: Any) -> Any:
    """A result collected on `on` reaches Cobalt on day 9, after the later ones."""
    clock.move_to(noon(day(9)))
    body = {"patient": patient.pk, "analyte": analyte, "value": value, "unit": "10^9/L", "collected_at": noon(on)}
    with capture(execute=True):
        response = api.post("/api/lab-results/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_critical_count_posted_after_a_later_normal_one_opens_showing_target_met(
    patient: Patient, enter: Enter, api: Any, clock: Any, nurse: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # V-2: a critical finding waits for a person even when a later result already meets its target. A count of 15
    # posted after the day-8 count used to open nothing (a lab's late report, or one file imported at once).
    start_treatment(patient)
    enter(patient, "platelets", "200", "10^9/L", T0)
    later = enter(patient, "platelets", "160", "10^9/L", day(8))

    low = enter_late(patient, api, clock, django_capture_on_commit_callbacks, "platelets", "15", day(5))

    alert = open_alerts(patient)["platelets_critical"]
    assert (alert.severity, alert.status) == ("critical", "open")
    assert alert.evidence["result_ids"] == [low["id"]] and alert.target_met_evidence["id"] == later["id"]
    assert Delivery.objects.filter(alert=alert, purpose="alert", user=nurse).exists()
    summary = evaluate_patient(patient.pk)
    assert summary["raised"] == [] and summary["target_met"] == []

    acknowledge(alert, nurse)
    assert evaluate_patient(patient.pk)["raised"] == []  # seen and closed: not opened again
    assert [a.status for a in Alert.objects.filter(patient=patient, kind="platelets_critical")] == ["resolved"]


def test_evaluating_again_with_the_same_evidence_does_not_reopen(patient: Patient, enter: Enter, nurse: Any) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    enter(patient, "platelets", "15", "10^9/L", day(5))
    acknowledge(open_alerts(patient)["platelets_critical"], nurse)

    summary = evaluate_patient(patient.pk)
    enter(patient, "hemoglobin", "110", "g/L", day(6))  # another analyte: no new platelet evidence

    assert summary["reopened"] == [] and summary["updated"] == []
    alert = open_alerts(patient)["platelets_critical"]
    assert alert.status == "acknowledged" and alert.acknowledged_by == nurse


def test_a_higher_severity_reopens_an_acknowledged_alert(patient: Patient, enter: Enter, nurse: Any) -> None:
    start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "105", "g/L", day(14))  # A-H2: rise 5 < 10, medium
    acknowledge(open_alerts(patient)["hemoglobin_slow_rise"], nurse, "Adherence checked")

    enter(patient, "hemoglobin", "105", "g/L", day(28))  # A-H3: rise 5 < 10 at 4 weeks, high

    alert = open_alerts(patient)["hemoglobin_slow_rise"]
    assert (alert.status, alert.severity, alert.rule_id) == ("open", "high", "A-H3")


# --- S-3 pseudo-TMA ------------------------------------------------------------------------------


def test_pseudo_tma_pattern_shows_the_critical_banner(patient: Patient, enter: Enter) -> None:
    enter(patient, "hemoglobin", "85", "g/L", day(-2))
    enter(patient, "platelets", "60", "10^9/L", day(-2))
    enter(patient, "ldh", "3000", "U/L", day(-2))

    alert = open_alerts(patient)["pseudo_tma_pattern"]
    assert alert.severity == "critical"
    assert S3_BANNER in alert.message
    assert "B12: pending" in alert.message
    assert {r["analyte"] for r in alert.evidence["results"]} >= {"hemoglobin", "platelets", "ldh"}


@pytest.mark.parametrize(
    ("count", "lab_range", "fires"),
    [
        ("145", {"ref_low": "140", "ref_high": "450"}, True),  # RULES S-3: < 150, whatever the lab's lower limit
        ("150", {}, False),  # exactly 150: not below
        ("155", {"ref_low": "160", "ref_high": "450"}, True),  # below the lab's own, higher, lower limit
    ],
)
def test_the_s3_platelet_limit_is_150_or_the_labs_higher_lower_limit(
    patient: Patient, enter: Enter, count: str, lab_range: dict[str, str], fires: bool
) -> None:
    enter(patient, "hemoglobin", "85", "g/L", day(-2))
    enter(patient, "platelets", count, "10^9/L", day(-2), **lab_range)
    enter(patient, "ldh", "3000", "U/L", day(-2))

    assert ("pseudo_tma_pattern" in open_alerts(patient)) is fires


def test_pseudo_tma_adamts13_follow_up_when_b12_is_low(patient: Patient, enter: Enter) -> None:
    for analyte, value, unit in [
        ("hemoglobin", "85", "g/L"),
        ("platelets", "60", "10^9/L"),
        ("ldh", "3000", "U/L"),
        ("b12_total", "100", "ng/L"),
        ("adamts13_activity", "61", "%"),
    ]:
        enter(patient, analyte, value, unit, day(-2))

    assert S3_ADAMTS13_TEXT in open_alerts(patient)["pseudo_tma_pattern"].message


def test_no_pseudo_tma_without_haemolysis_and_with_a_normal_b12_the_ttp_alert_instead(
    patient: Patient, enter: Enter
) -> None:
    enter(patient, "hemoglobin", "85", "g/L", day(-2))
    enter(patient, "platelets", "60", "10^9/L", day(-2))
    enter(patient, "ldh", "200", "U/L", day(-2))  # normal: no haemolysis marker
    assert "pseudo_tma_pattern" not in open_alerts(patient)
    enter(patient, "b12_total", "400", "ng/L", day(-2))  # B12 unlikely deficient
    enter(patient, "ldh", "3000", "U/L", day(-2))
    assert "pseudo_tma_pattern" not in open_alerts(patient)
    # RULES §10 V-7: the pattern with a B12 that is not low is no longer silent.
    not_low = open_alerts(patient)["tma_pattern_b12_not_low"]
    assert (not_low.severity, not_low.rule_id) == ("critical", "S-3")
    assert not_low.message.startswith("TMA pattern without low B12: exclude TTP urgently; ADAMTS13")


# --- S-9 potassium, S-13, S-15, S-6(b), transfusion note -------------------------------------------------


def test_severe_anaemia_at_t0_asks_for_potassium_until_one_is_measured(patient: Patient, enter: Enter) -> None:
    enter(patient, "hemoglobin", "79", "g/L", day(-1))  # below 80 g/L [P]
    start_treatment(patient)
    enter(patient, "mcv", "110", "fL", T0)  # any result triggers the evaluation

    assert open_alerts(patient)["potassium_check_due"].rule_id == "S-9"
    l1 = LabRecheck.objects.get(patient=patient, rule="L-1")
    assert l1.analytes == ["potassium"] and l1.status == RecheckStatus.DUE

    enter(patient, "potassium", "3.2", "mmol/L", day(1))

    assert "potassium_check_due" not in open_alerts(patient)
    assert LabRecheck.objects.get(pk=l1.pk).status == RecheckStatus.DONE


def test_hb_of_80_does_not_ask_for_potassium(patient: Patient, enter: Enter) -> None:
    enter(patient, "hemoglobin", "80", "g/L", day(-1))
    start_treatment(patient)
    enter(patient, "mcv", "110", "fL", T0)

    assert "potassium_check_due" not in open_alerts(patient)
    assert not LabRecheck.objects.filter(patient=patient, rule="L-1").exclude(status="cancelled").exists()


def test_b12_measured_after_t0_is_flagged_falsely_reassuring(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "b12_total", "300", "ng/L", T0)  # day 0: the pre-dose sample
    assert "sample_after_treatment" not in open_alerts(patient)
    enter(patient, "b12_total", "900", "ng/L", day(1))

    alert = open_alerts(patient)["sample_after_treatment"]
    assert alert.severity == "info" and alert.rule_id == "S-13"
    assert "falsely reassuring" in alert.message


def test_a_failed_response_creates_a_ferritin_and_folate_task_that_survives_a_replan(
    patient: Patient, enter: Enter
) -> None:
    regimen = start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "102", "g/L", day(14))

    task = LabRecheck.objects.get(patient=patient, key__startswith="task:S-15")
    assert task.rule == "L-9" and task.analytes == ["ferritin", "folate"]
    # Inserted without a savepoint (ON CONFLICT DO NOTHING), with the history row a save writes.
    created = task.history.get()
    assert (created.history_type, created.history_change_reason, created.status) == ("+", None, RecheckStatus.DUE)
    regimen_replan(regimen=regimen)
    assert LabRecheck.objects.get(pk=task.pk).status == RecheckStatus.DUE
    enter(patient, "ferritin", "12", "ug/L", day(15))
    enter(patient, "folate", "6", "ug/L", day(15))
    assert LabRecheck.objects.get(pk=task.pk).status == RecheckStatus.DONE


@pytest.mark.parametrize(
    ("analyte", "unit", "baseline", "later", "on_day", "rule"),
    [
        ("hemoglobin", "g/L", "100", "110", 90, "A-H7"),  # still below the LLN (120) at 3 months: refractory
        ("platelets", "10^9/L", "90", "140", 14, "A-P2"),  # platelets fail to normalize
        ("platelets", "10^9/L", "90", "80", 8, "A-P1"),  # platelets not rising
    ],
)
def test_every_failure_to_respond_alert_asks_for_ferritin_and_folate(
    patient: Patient, enter: Enter, analyte: str, unit: str, baseline: str, later: str, on_day: int, rule: str
) -> None:
    # RULES L-9: "any 'failure to respond' alert", not only the A-H1..A-H4 of S-15.
    start_treatment(patient)
    enter(patient, analyte, baseline, unit, T0)
    enter(patient, analyte, later, unit, day(on_day))

    assert rule in {a.rule_id for a in open_alerts(patient).values()}
    task = LabRecheck.objects.get(patient=patient, key__startswith="task:", analytes=["ferritin", "folate"])
    assert (task.rule, task.description) == ("L-9", f"Ferritin and folate: poor response ({rule}), L-9")


def test_a_critical_fall_is_not_a_failure_to_respond_and_asks_for_no_ferritin(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "hemoglobin", "110", "g/L", T0)
    enter(patient, "hemoglobin", "85", "g/L", day(5))  # A-H5: bleeding or haemolysis, not a slow response

    assert "hemoglobin_falling" in open_alerts(patient)
    assert not LabRecheck.objects.filter(patient=patient, rule="L-9").exists()


def test_symptoms_long_before_t0_add_an_info_note(patient: Patient, enter: Enter, clock: Any) -> None:
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=T0 - timedelta(days=91))
    start_treatment(patient)
    enter(patient, "hemoglobin", "125", "g/L", T0)

    alert = open_alerts(patient)["neuro_treatment_delay"]
    assert (alert.severity, alert.rule_id) == ("info", "S-6(b)")


def test_symptoms_90_days_before_t0_add_no_note(patient: Patient, enter: Enter) -> None:
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=T0 - timedelta(days=90))
    start_treatment(patient)
    enter(patient, "hemoglobin", "125", "g/L", T0)

    assert "neuro_treatment_delay" not in open_alerts(patient)


def test_the_neurological_involvement_flag_alone_raises_s6a_at_evaluation(clinic: Any) -> None:
    # RULES §10 V-5: S-6(a) applies on the patient's flag as well as on a symptom fact.
    with time_machine.travel(noon(T0 - timedelta(days=3)), tick=False):
        patient = new_patient(clinic=clinic, neurological_involvement=True)
    start_treatment(patient)  # first dose on T0: three days after the flag

    evaluate_patient(patient.pk, at=noon(T0))

    alert = open_alerts(patient)["neuro_treatment_delay"]
    assert (alert.severity, alert.rule_id) == ("high", "S-6(a)")
    assert alert.evidence["fact_ids"] == []


def test_a_flagged_patient_dosed_within_24_hours_has_no_delay_at_evaluation(clinic: Any) -> None:
    with time_machine.travel(datetime(2027, 1, 3, 18, tzinfo=UTC), tick=False):
        patient = new_patient(clinic=clinic, neurological_involvement=True)
    start_treatment(patient)  # given 10:00 on 4 January, 16 hours later

    evaluate_patient(patient.pk, at=noon(T0 + timedelta(days=2)))

    assert "neuro_treatment_delay" not in open_alerts(patient)


def test_transfusion_suppresses_slow_rise_and_shows_the_note(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    PatientFact.objects.create(patient=patient, kind="transfusion", onset_date=day(5))
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "105", "g/L", day(14))

    alerts = open_alerts(patient)
    assert "hemoglobin_slow_rise" not in alerts
    assert alerts["transfusion_note"].message == "post-transfusion: Hb response not interpretable"


def test_an_evaluation_with_nothing_new_writes_no_history(patient: Patient, enter: Enter) -> None:
    regimen = start_treatment(patient)
    enter(patient, "platelets", "90", "10^9/L", T0)
    history = (regimen.history.count(), LabRecheck.history.filter(patient_id=patient.pk).count())

    evaluate_patient(patient.pk)

    assert (regimen.history.count(), LabRecheck.history.filter(patient_id=patient.pk).count()) == history


def test_the_first_dose_sets_t0_and_asks_for_potassium_without_a_new_result(
    patient: Patient, enter: Enter, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    enter(patient, "hemoglobin", "79", "g/L", day(-1))
    assert "potassium_check_due" not in open_alerts(patient)  # no T0 yet: no first dose

    clock.move_to(noon(T0))
    with django_capture_on_commit_callbacks(execute=True):
        start_treatment(patient)

    assert open_alerts(patient)["potassium_check_due"].evidence["t0"] == T0.isoformat()


# --- Numbers for people in alert texts (and so in staff emails, which carry the message) -------------------


def test_it_writes_alert_values_for_people(clinic: Any, enter: Enter) -> None:
    patient = new_patient(clinic=clinic, sex="male")
    start_treatment(patient)
    enter(patient, "hemoglobin", "9.00", "g/dL", T0)  # 90 g/L, stored 90.000000
    enter(patient, "hemoglobin", "12.50", "g/dL", day(56), ref_low="13.0", ref_high="17.0")  # LLN 130 g/L

    message = open_alerts(patient)["hemoglobin_not_normalized"].message

    assert "125 g/L on day 56 is below the LLN 130 (A-H4)" in message
    assert ".000000" not in message and "E+" not in message


# --- RULES §10 V-4: A-P3 for every patient, the film clause -------------------------------------------------


def test_new_schistocytes_after_t0_open_a_p3_whatever_the_baseline(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "260", "10^9/L", T0)  # normal baseline: A-P3 used to stay silent
    enter(patient, "schistocytes", "absent", "", T0)
    enter(patient, "platelets", "240", "10^9/L", day(5))
    assert "platelets_critical" not in open_alerts(patient)

    body = enter(patient, "schistocytes", "present", "", day(6))

    alert = open_alerts(patient)["platelets_critical"]
    assert (alert.rule_id, alert.severity) == ("A-P3", "critical")
    assert alert.evidence["analyte"] == "schistocytes" and alert.evidence["day"] == 6
    assert alert.evidence["result_ids"] == [body["id"]]


def test_a_platelet_fall_to_a_normal_count_is_not_critical(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)
    enter(patient, "platelets", "600", "10^9/L", T0)
    enter(patient, "platelets", "400", "10^9/L", day(5))  # a 33 % fall, still normal
    assert "platelets_critical" not in open_alerts(patient)
    enter(patient, "platelets", "140", "10^9/L", day(9))  # a 65 % fall to below the LLN
    assert open_alerts(patient)["platelets_critical"].rule_id == "A-P3"


# --- RULES §10 V-1: an enrolment at maintenance has no response windows -------------------------------------


def test_an_enrolment_at_maintenance_gets_a_h5_but_no_window_rules(patient: Patient, enter: Enter) -> None:
    with time_machine.travel(noon(T0), tick=False):
        regimen_start(
            patient=patient,
            protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
            start_date=T0,
            options={"enrol": {"phase": "maintenance", "last_dose_date": "2026-12-01"}},
        )
    enter(patient, "hemoglobin", "110", "g/L", T0)  # below the female LLN 120
    enter(patient, "hemoglobin", "108", "g/L", day(56))  # would be A-H4 with response windows
    assert open_alerts(patient) == {}

    enter(patient, "hemoglobin", "85", "g/L", day(60))  # 23 g/L lower than the previous: A-H5
    assert set(open_alerts(patient)) == {"hemoglobin_falling"}
    assert open_alerts(patient)["hemoglobin_falling"].evidence["t0"] == "2026-12-01"


def test_a_panel_with_ferritin_and_folate_beside_the_failed_haemoglobin_leaves_their_task_done(
    patient: Patient, enter: Enter, api: Any, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """RULES L-9 / S-15 asks for ferritin and folate when the haemoglobin fails to respond. Drawn in the same panel,
    they already answer it: the task is recorded as done, not left due (and overdue a week later) until the
    patient's next result."""
    start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    clock.move_to(noon(day(14)) + timedelta(hours=1))
    body = {
        "patient": patient.pk,
        "collected_at": noon(day(14)).isoformat(),
        "results": [
            {"analyte": "hemoglobin", "value": "102", "unit": "g/L"},
            {"analyte": "ferritin", "value": "12", "unit": "ug/L"},
            {"analyte": "folate", "value": "6", "unit": "ug/L"},
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/lab-results/panel/", body, format="json")
    assert response.status_code == 201, response.json()

    task = LabRecheck.objects.get(patient=patient, key__startswith="task:S-15")
    assert (task.status, task.completed_at) == (RecheckStatus.DONE, noon(day(14)) + timedelta(hours=1))
    assert evaluate_patient(patient.pk)["rechecks_done"] == 0
