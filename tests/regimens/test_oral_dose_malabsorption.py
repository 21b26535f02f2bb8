"""RULES R-ORAL-1 ("NG239: if the cause is or may be malabsorption, prescribe at least 1 mg a day"), §8 Q2
("require the ≥ 1 mg/day dose check") and §10 V-6 ("an oral dose below 1000 mcg/day ... is refused without an
override reason"): the dose check covers every cause that is or may be malabsorption (every recorded cause but
diet and nitrous oxide; decision D-ORAL-2), not only pernicious anaemia, autoimmune gastritis and IF antibody.
V-6's oral first-line caution (a hard-stop warning) keeps its own, narrower scope."""

from __future__ import annotations

from datetime import date
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.conf import settings

from notifications.models import Alert
from patients.models import DeficiencyCause, PatientFact
from patients.selectors import oral_dose_check_cause
from regimens.models import ProtocolPhase, Regimen, ScheduledDose
from tests.conftest import client_for
from tests.monitoring.conftest import TODAY, start
from tracker.errors import ServiceError, WarningsNotAcknowledged

pytestmark = pytest.mark.django_db

DOSE_FIELD = "options.phases.oral.dose_mcg"
REASON = "Declines 1 mg tablets; GP checks B12 at 3 months"


def with_cause(patient: Any, cause: str) -> Any:
    patient.deficiency_cause = cause
    patient.save()
    return patient


def refused(patient: Any, code: str = "diet-oral", **kw: Any) -> ServiceError:
    """Start `code`; it must be refused by a ServiceError that is not a safety warning, writing nothing."""
    with pytest.raises(ServiceError) as error:
        start(patient, code, **kw)
    assert not isinstance(error.value, WarningsNotAcknowledged)
    assert not Regimen.objects.filter(patient=patient).exists()
    assert not ScheduledDose.objects.filter(regimen__patient=patient).exists()
    assert not Alert.objects.filter(patient=patient).exists()
    return error.value


# --- Which causes -----------------------------------------------------------------------------------


def test_every_cause_but_diet_and_nitrous_oxide_is_read_as_malabsorption(patient: Any) -> None:
    checked = set()
    for cause in DeficiencyCause.values:
        if oral_dose_check_cause(with_cause(patient, cause), date(2027, 1, 4)) is not None:
            checked.add(cause)

    assert checked == set(DeficiencyCause.values) - {"diet", "nitrous_oxide"}


def test_an_if_antibody_still_brings_a_dietary_cause_under_the_check(patient: Any) -> None:
    with_cause(patient, "nitrous_oxide")
    PatientFact.objects.create(patient=patient, kind="if_antibody_positive")

    assert oral_dose_check_cause(patient, date(2027, 1, 4)) == "if_antibody_positive"


# --- Refused without a reason -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "label"), [("metformin", "metformin"), ("ileal_disease", "ileal disease"), ("unknown", "unknown")]
)
def test_diet_oral_below_1000_mcg_a_day_is_refused_for_a_possible_malabsorption_cause(
    patient: Any, cause: str, label: str
) -> None:
    # Given a patient whose cause is or may be malabsorption (no neurology, no IF antibody, not irreversible)
    with_cause(patient, cause)

    # When diet-oral (100 mcg by mouth a day) is started without a reason
    error = refused(patient)

    # Then the dose field is named, with the dose, RULES' 1000 mcg and the cause
    assert error.field == DOSE_FIELD
    assert "100 mcg a day by mouth is below the 1000 mcg a day" in error.message
    assert f"(here: {label};" in error.message
    assert "R-ORAL-1" in error.message
    assert "override_reason" in error.message


@pytest.mark.parametrize("cause", ["gastrectomy", "bariatric_surgery", "ileal_resection", "acid_suppression", "other"])
def test_the_dose_check_itself_covers_the_other_malabsorption_causes(patient: Any, cause: str) -> None:
    # Given the check on its own (no warning listener: S-5's reason would otherwise also cover it)
    with_cause(patient, cause)

    with mock.patch("regimens.services.regimens.events.collect", return_value=[]):
        error = refused(patient)

    assert error.field == DOSE_FIELD


def test_a_dose_set_in_options_is_checked(patient: Any) -> None:
    # 150 mcg is within diet-oral's 50-150 range (no range reason needed) but below 1000 mcg a day
    with_cause(patient, "metformin")

    error = refused(patient, options={"phases": {"oral": {"dose_mcg": 150}}})

    assert error.field == DOSE_FIELD
    assert "150 mcg a day" in error.message


@pytest.mark.parametrize(("dose", "refuse"), [(999, True), (1000, False)])
def test_the_threshold_is_1000_mcg_a_day(patient: Any, dose: int, refuse: bool) -> None:
    # Given diet-oral edited locally to allow up to 2000 mcg (so no range reason is needed)
    ProtocolPhase.objects.filter(protocol__code="diet-oral", key="oral").update(dose_max_mcg=2000)
    with_cause(patient, "ileal_disease")
    options = {"phases": {"oral": {"dose_mcg": dose}}}

    if refuse:
        assert "999 mcg a day" in refused(patient, options=options).message
        return
    regimen = start(patient, "diet-oral", options=options)
    assert (regimen.override_reason, regimen.acknowledged_warnings) == ("", [])


def test_a_non_daily_oral_dose_is_counted_per_day(patient: Any) -> None:
    # 1000 mcg by mouth on alternate days is 500 mcg a day
    ProtocolPhase.objects.filter(protocol__code="oral-high-dose").update(spacing="alternate_days")
    with_cause(patient, "acid_suppression")

    assert "500 mcg a day" in refused(patient, "oral-high-dose").message


def test_a_reason_too_short_to_document_anything_is_refused(patient: Any) -> None:
    with_cause(patient, "metformin")
    minimum = int(settings.COBALT["OVERRIDE_REASON_MIN_LENGTH"])

    error = refused(patient, override_reason="x" * (minimum - 1))

    assert error.field == "override_reason"
    assert f"at least {minimum} characters" in error.message


# --- Started with a reason --------------------------------------------------------------------------


@pytest.mark.parametrize("cause", ["metformin", "ileal_disease", "unknown"])
def test_with_a_reason_it_starts_and_the_reason_is_kept_on_the_regimen(patient: Any, cause: str) -> None:
    with_cause(patient, cause)

    regimen = start(patient, "diet-oral", acknowledge=[], override_reason=f"  {REASON} ")

    # Kept as V-6 keeps it: on the regimen's override_reason; no safety warning is acknowledged and,
    # as for V-6's dose check, no alert is opened
    assert regimen.override_reason == REASON
    assert regimen.acknowledged_warnings == []
    assert regimen.doses.first().dose_mcg == 100  # type: ignore[union-attr]
    assert not Alert.objects.filter(patient=patient).exists()


def test_the_options_reason_also_covers_a_low_oral_dose(patient: Any) -> None:
    # As for V-6: the reason given with the options (here for a dose outside diet-oral's range) is a reason
    with_cause(patient, "metformin")
    options = {"phases": {"oral": {"dose_mcg": 500}}, "override_reason": REASON}

    regimen = start(patient, "diet-oral", options=options)

    assert regimen.override_reason == REASON
    assert regimen.doses.first().dose_mcg == 500  # type: ignore[union-attr]


def test_for_an_irreversible_cause_one_reason_overrides_s5_and_the_dose_check(patient: Any) -> None:
    # Gastrectomy on diet-oral: S-5 (a regimen that ends) is acknowledged; its reason also covers the dose
    with_cause(patient, "gastrectomy")
    with pytest.raises(WarningsNotAcknowledged) as warned:
        start(patient, "diet-oral")
    assert [w.code for w in warned.value.warnings] == ["lifelong_therapy_not_planned"]

    regimen = start(patient, "diet-oral", acknowledge=["lifelong_therapy_not_planned"], override_reason=REASON)

    assert regimen.override_reason == REASON
    assert regimen.acknowledged_warnings == ["lifelong_therapy_not_planned"]


# --- Not asked --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cause", ["metformin", "ileal_disease", "unknown", "other", "gastrectomy"])
def test_oral_high_dose_starts_with_no_dose_check_and_no_oral_caution(patient: Any, cause: str) -> None:
    with_cause(patient, cause)

    regimen = start(patient, "oral-high-dose")

    assert (regimen.override_reason, regimen.acknowledged_warnings) == ("", [])
    assert regimen.doses.first().dose_mcg == 1000  # type: ignore[union-attr]


@pytest.mark.parametrize("cause", ["diet", "nitrous_oxide"])
def test_a_dietary_or_nitrous_oxide_cause_on_diet_oral_is_not_asked(patient: Any, cause: str) -> None:
    with_cause(patient, cause)

    regimen = start(patient, "diet-oral")

    assert (regimen.override_reason, regimen.acknowledged_warnings) == ("", [])


def test_the_oral_first_line_caution_keeps_its_scope(patient: Any) -> None:
    # A metformin patient on diet-oral meets the dose check, not V-6's caution (a warning for PA / AG / IF+ /
    # neurology only): the refusal names the dose, and no warning is listed
    with_cause(patient, "metformin")

    assert refused(patient).field == DOSE_FIELD

    # Pernicious anaemia still meets the caution first
    with_cause(patient, "pernicious_anemia")
    with pytest.raises(WarningsNotAcknowledged) as warned:
        start(patient, "oral-high-dose")
    assert [w.code for w in warned.value.warnings] == ["oral_first_line_caution"]


# --- Through the API --------------------------------------------------------------------------------


def test_the_api_names_the_dose_field_and_keeps_the_reason(patient: Any, clinician: Any) -> None:
    with_cause(patient, "metformin")
    api = client_for(clinician)
    body: dict[str, Any] = {"patient": patient.pk, "protocol": "diet-oral", "start_date": "2027-01-04"}

    with time_machine.travel(TODAY, tick=False):
        no_reason = api.post("/api/regimens/", body, format="json")
        assert no_reason.status_code == 400
        assert DOSE_FIELD in no_reason.json()
        assert not Regimen.objects.filter(patient=patient).exists()

        started = api.post("/api/regimens/", {**body, "override_reason": REASON}, format="json")

    assert started.status_code == 201, started.json()
    assert Regimen.objects.get(patient=patient).override_reason == REASON
