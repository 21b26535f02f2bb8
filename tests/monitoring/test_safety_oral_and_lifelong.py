"""RULES R-ORAL-1, §8 Q2, §10 V-6 (oral first line) and S-5 as §10 V-13 widens it: hard stops at regimen
start and stop, each overridden only with a reason, each override opening a HIGH alert."""

from __future__ import annotations

from datetime import date
from typing import Any
from unittest import mock

import pytest
import time_machine

from notifications.models import Alert
from patients.models import PatientFact
from regimens import services
from regimens.models import Regimen
from tests.monitoring.conftest import start
from tracker.errors import ServiceError, WarningsNotAcknowledged

pytestmark = pytest.mark.django_db



def refused_codes(patient: Any, code: str, **kw: Any) -> list[str]:
    with pytest.raises(WarningsNotAcknowledged) as refused:
        start(patient, code, **kw)
    assert not Regimen.objects.filter(patient=patient).exists()
    return [w.code for w in refused.value.warnings]


def with_cause(patient: Any, cause: str, **fields: Any) -> Any:
    patient.deficiency_cause = cause
    for name, value in fields.items():
        setattr(patient, name, value)
    patient.save()
    return patient


def alerts(patient: Any, kind: str) -> list[Alert]:
    return list(Alert.objects.filter(patient=patient, kind=kind))


# --- §10 V-6: oral first line ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["oral-high-dose", "bariatric-oral", "diet-oral"])
@pytest.mark.parametrize("cause", ["pernicious_anemia", "autoimmune_gastritis"])
def test_it_stops_every_oral_protocol_for_pernicious_anaemia_or_autoimmune_gastritis(
    patient: Any, code: str, cause: str
) -> None:
    with_cause(patient, cause)

    assert "oral_first_line_caution" in refused_codes(patient, code)


def test_it_stops_an_oral_protocol_for_an_if_antibody_positive_patient(patient: Any) -> None:
    with_cause(patient, "metformin")
    PatientFact.objects.create(patient=patient, kind="if_antibody_positive", onset_date=date(2026, 11, 1))

    assert refused_codes(patient, "oral-high-dose") == ["oral_first_line_caution"]


@pytest.mark.parametrize("how", ["flag", "symptom_fact"])
def test_it_stops_an_oral_protocol_for_neurological_involvement_whatever_the_cause(patient: Any, how: str) -> None:
    with_cause(patient, "metformin", neurological_involvement=how == "flag")
    if how == "symptom_fact":
        PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=date(2026, 11, 20))

    with pytest.raises(WarningsNotAcknowledged) as refused:
        start(patient, "oral-high-dose")

    [warning] = refused.value.warnings
    assert (warning.code, warning.rule) == ("oral_first_line_caution", "R-ORAL-1")
    assert warning.details["neurological_involvement"] is True
    assert "neurological" in warning.message


def test_it_does_not_stop_an_oral_protocol_without_neurology_or_an_autoimmune_cause(patient: Any) -> None:
    with_cause(patient, "metformin")
    # A checked-and-absent neurological symptom or IF antibody record is not involvement.
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", absent=True)
    PatientFact.objects.create(patient=patient, kind="if_antibody_positive", absent=True)

    regimen = start(patient, "oral-high-dose")

    assert regimen.acknowledged_warnings == []
    assert Alert.objects.filter(patient=patient).count() == 0


def test_it_does_not_stop_an_im_protocol_for_pernicious_anaemia_with_neurology(patient: Any) -> None:
    with_cause(patient, "pernicious_anemia", neurological_involvement=True)

    regimen = start(patient, "hydroxo-uk-neuro")

    assert regimen.acknowledged_warnings == []


def test_the_oral_caution_needs_a_reason_and_its_override_opens_a_high_alert(patient: Any) -> None:
    with_cause(patient, "pernicious_anemia")

    # Acknowledged without a reason: refused, naming override_reason
    with pytest.raises(ServiceError) as no_reason:
        start(patient, "oral-high-dose", acknowledge=["oral_first_line_caution"])
    assert no_reason.value.field == "override_reason"
    assert not Regimen.objects.filter(patient=patient).exists()

    regimen = start(
        patient, "oral-high-dose", acknowledge=["oral_first_line_caution"], override_reason="patient declines IM"
    )

    assert regimen.acknowledged_warnings == ["oral_first_line_caution"]
    assert regimen.override_reason == "patient declines IM"
    [alert] = alerts(patient, "oral_first_line_caution")
    assert (alert.severity, alert.rule_id, alert.status) == ("high", "R-ORAL-1", "open")
    assert alert.evidence["override_reason"] == "patient declines IM"
    assert alert.evidence["warnings"][0]["details"]["cause"] == "pernicious_anemia"


# --- §10 V-6: at least 1000 mcg a day by mouth for PA / AG / IF antibody -------------------------


def test_it_names_the_dose_field_when_an_oral_dose_below_1000_mcg_a_day_has_no_reason(patient: Any) -> None:
    # Given the check on its own (no warning listener): PA on diet-oral, 100 mcg a day by default
    with_cause(patient, "pernicious_anemia")

    with mock.patch("regimens.services.regimens.events.collect", return_value=[]):
        with pytest.raises(ServiceError) as refused:
            start(patient, "diet-oral")
        assert refused.value.field == "options.phases.oral.dose_mcg"
        assert "1000" in refused.value.message

        # 1000 mcg a day passes (with the reason the protocol's 50-150 range needs)
        regimen = start(
            patient,
            "diet-oral",
            options={"phases": {"oral": {"dose_mcg": 1000}}, "override_reason": "PA: NG239 at least 1 mg"},
        )
    assert regimen.options["phases"]["oral"]["dose_mcg"] == 1000


@pytest.mark.parametrize(("dose", "refused"), [(999, True), (1000, False)])
def test_it_refuses_less_than_1000_mcg_a_day_by_mouth_for_an_if_antibody_positive_patient(
    patient: Any, dose: int, refused: bool
) -> None:
    # Given diet-oral edited locally to allow up to 2000 mcg (so no range reason is needed) and an
    # IF-antibody-positive patient
    from regimens.models import ProtocolPhase

    ProtocolPhase.objects.filter(protocol__code="diet-oral", key="oral").update(dose_max_mcg=2000)
    with_cause(patient, "diet")
    PatientFact.objects.create(patient=patient, kind="if_antibody_positive")
    options = {"phases": {"oral": {"dose_mcg": dose}}}

    with mock.patch("regimens.services.regimens.events.collect", return_value=[]):
        if refused:
            with pytest.raises(ServiceError) as error:
                start(patient, "diet-oral", options=options)
            assert error.value.field == "options.phases.oral.dose_mcg"
            assert "999 mcg a day" in error.value.message
            # With a reason it is the clinician's call
            start(patient, "diet-oral", options=options, override_reason="trial of lower dose, GP follows up")
        else:
            start(patient, "diet-oral", options=options)
    assert Regimen.objects.filter(patient=patient).count() == 1


def test_it_counts_a_non_daily_oral_dose_per_day(patient: Any) -> None:
    # 1000 mcg by mouth on alternate days is 500 mcg a day (RULES R-ORAL-1 speaks of mcg a day)
    from regimens.models import ProtocolPhase

    ProtocolPhase.objects.filter(protocol__code="oral-high-dose").update(spacing="alternate_days")
    with_cause(patient, "autoimmune_gastritis")

    with mock.patch("regimens.services.regimens.events.collect", return_value=[]):
        with pytest.raises(ServiceError) as error:
            start(patient, "oral-high-dose")
    assert "500 mcg a day" in error.value.message


def test_the_override_reason_also_covers_a_low_oral_dose(patient: Any) -> None:
    # PA on diet-oral: the caution and S-5 (an ending regimen) both apply; one reason overrides both
    with_cause(patient, "pernicious_anemia")

    codes = refused_codes(patient, "diet-oral")
    assert codes == ["oral_first_line_caution", "lifelong_therapy_not_planned"]
    regimen = start(patient, "diet-oral", acknowledge=codes, override_reason="vegan, IF antibody negative per GP")

    assert regimen.doses.first().dose_mcg == 100  # type: ignore[union-attr]
    assert {a.kind for a in Alert.objects.filter(patient=patient)} == {
        "oral_first_line_caution",
        "lifelong_therapy_stopped",
    }


def test_a_dietary_deficiency_on_diet_oral_needs_nothing(patient: Any) -> None:
    with_cause(patient, "diet")

    regimen = start(patient, "diet-oral")

    assert regimen.acknowledged_warnings == []


# --- §10 V-13: S-5 scope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "if_antibody", "warned"),
    [
        ("gastrectomy", False, True),
        ("ileal_resection", False, True),
        ("diet", True, True),  # IF antibody positive whatever the recorded cause
        ("diet", False, False),
        ("nitrous_oxide", False, False),
    ],
)
def test_it_warns_before_starting_a_regimen_that_ends_for_an_irreversible_cause(
    patient: Any, cause: str, if_antibody: bool, warned: bool
) -> None:
    with_cause(patient, cause)
    if if_antibody:
        PatientFact.objects.create(patient=patient, kind="if_antibody_positive")

    if not warned:
        assert start(patient, "diet-oral").acknowledged_warnings == []
        return
    codes = refused_codes(patient, "diet-oral")
    assert "lifelong_therapy_not_planned" in codes
    with pytest.raises(ServiceError) as no_reason:
        start(patient, "diet-oral", acknowledge=codes)
    assert no_reason.value.field == "override_reason"

    regimen = start(patient, "diet-oral", acknowledge=codes, override_reason="cause under review")

    [alert] = alerts(patient, "lifelong_therapy_stopped")
    assert (alert.severity, alert.rule_id) == ("high", "S-5")
    assert alert.evidence["source"] == "regimen_start"
    assert regimen.override_reason == "cause under review"


def test_it_does_not_warn_at_start_for_a_lifelong_or_clinician_ended_regimen(patient: Any) -> None:
    with_cause(patient, "gastrectomy")

    assert start(patient, "oral-high-dose").acknowledged_warnings == []


def test_stopping_oral_high_dose_for_an_irreversible_cause_needs_s5(patient: Any) -> None:
    with_cause(patient, "gastrectomy")
    regimen = start(patient, "oral-high-dose")

    with time_machine.travel("2027-02-01 09:00:00+00:00", tick=False):
        with pytest.raises(WarningsNotAcknowledged) as refused:
            services.regimen_stop(regimen=regimen, reason="B12 normal at review")
        [warning] = refused.value.warnings
        assert (warning.code, warning.details["deficiency_cause"]) == ("lifelong_therapy_stopped", "gastrectomy")

        services.regimen_stop(regimen=regimen, reason="B12 normal at review", acknowledge=["lifelong_therapy_stopped"])

    [alert] = alerts(patient, "lifelong_therapy_stopped")
    assert alert.evidence["stop_reason"] == "B12 normal at review"


def test_stopping_lifelong_therapy_of_an_if_antibody_positive_patient_needs_s5(patient: Any) -> None:
    with_cause(patient, "unknown")
    regimen = start(patient, "hydroxo-uk-standard")
    PatientFact.objects.create(patient=patient, kind="if_antibody_positive", note="IFAb positive 2027-01-10")

    with time_machine.travel("2027-02-01 09:00:00+00:00", tick=False):
        with pytest.raises(WarningsNotAcknowledged) as refused:
            services.regimen_stop(regimen=regimen, reason="moved away")

    [warning] = refused.value.warnings
    assert warning.details["if_antibody_positive"] is True
    assert "IF antibody positive" in warning.message


def test_stopping_oral_high_dose_for_a_reversible_cause_needs_nothing(patient: Any) -> None:
    with_cause(patient, "metformin")
    regimen = start(patient, "oral-high-dose")

    with time_machine.travel("2027-02-01 09:00:00+00:00", tick=False):
        stopped = services.regimen_stop(regimen=regimen, reason="metformin stopped; B12 normal")

    assert stopped.status == "stopped"
