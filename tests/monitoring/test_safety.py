"""Point-of-care safety warnings (RULES §4 S-2, S-5, S-10, S-11, S-12) on the regimen and dose API:
a warning must be acknowledged before anything is written; the acknowledgement is stored and the
matching alert is raised once, in the same transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from monitoring import safety
from notifications.models import Alert
from patients.models import LabResult, PatientFact
from regimens.models import Regimen, ScheduledDose
from tests.monitoring.conftest import TODAY, start
from tracker.errors import WarningsNotAcknowledged

pytestmark = pytest.mark.django_db

# The first loading dose of a regimen started on Monday 4 January 2027 is given that day at 10:30.
GIVEN_AT = datetime(2027, 1, 4, 10, 30, tzinfo=UTC)


def first_dose(regimen: Regimen) -> ScheduledDose:
    return regimen.doses.order_by("phase_index", "sequence").filter(status__in=["planned", "given"]).first()  # type: ignore[return-value]


def platelets(patient: Any, value: str, collected_at: datetime) -> LabResult:
    return LabResult.objects.create(
        patient=patient,
        analyte="platelets",
        loinc="777-3",
        value_as_entered=value,
        unit_as_entered="10^9/L",
        value_canonical=Decimal(value),
        unit_canonical="10^9/L",
        collected_at=collected_at,
    )


def fact(patient: Any, kind: str, **values: Any) -> PatientFact:
    return PatientFact.objects.create(patient=patient, kind=kind, **values)


def alerts(patient: Any, kind: str) -> list[Alert]:
    return list(Alert.objects.filter(patient=patient, kind=kind))


# --- S-2: IM injection with low platelets -------------------------------------------------------


def test_it_warns_before_an_im_dose_with_low_platelets_and_records_it_once_acknowledged(
    api: APIClient, patient: Any
) -> None:
    # Given a patient whose platelet count two days ago was 45
    regimen = start(patient)
    dose = first_dose(regimen)
    platelets(patient, "45", datetime(2027, 1, 2, 9, 0, tzinfo=UTC))
    body = {"administered_at": "2027-01-04T10:30:00+00:00", "lot_number": "HX1"}

    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        # When the nurse records the IM dose without acknowledging
        refused = api.post(f"/api/doses/{dose.pk}/administer/", body, format="json")

        # Then it is refused with the S-2 code, the count and the suggestion, and nothing is written
        assert refused.status_code == 400
        assert "acknowledge" in refused.json()
        [warning] = refused.json()["warnings"]
        assert (warning["code"], warning["rule"]) == ("im_injection_low_platelets", "S-2")
        assert warning["details"]["platelets"] == 45
        assert "deep SC" in warning["message"]
        dose.refresh_from_db()
        assert dose.status == "planned"
        assert alerts(patient, "im_injection_low_platelets") == []

        # When it is recorded again, acknowledging the warning (twice: a retried request)
        acked = {**body, "acknowledge": ["im_injection_low_platelets"]}
        given = api.post(f"/api/doses/{dose.pk}/administer/", acked, format="json")
        again = api.post(f"/api/doses/{dose.pk}/administer/", acked, format="json")

    # Then the dose is given with the acknowledgement stored, and one HIGH alert is open
    assert given.status_code == 200, given.json()
    assert again.status_code == 200, again.json()
    dose.refresh_from_db()
    assert dose.status == "given"
    assert dose.acknowledged_warnings == ["im_injection_low_platelets"]
    [alert] = alerts(patient, "im_injection_low_platelets")
    assert (alert.severity, alert.rule_id, alert.status) == ("high", "S-2", "open")
    assert alert.evidence["dose_id"] == dose.pk
    assert alert.evidence["warnings"][0]["details"]["platelets"] == 45


def test_it_never_cancels_the_dose_when_the_warning_is_not_acknowledged(api: APIClient, patient: Any) -> None:
    regimen = start(patient)
    platelets(patient, "20", datetime(2027, 1, 3, 9, 0, tzinfo=UTC))
    planned_before = regimen.doses.filter(status="planned").count()

    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        refused = api.post(
            f"/api/doses/{first_dose(regimen).pk}/administer/",
            {"administered_at": "2027-01-04T10:30:00+00:00"},
            format="json",
        )

    assert refused.status_code == 400
    assert regimen.doses.filter(status="planned").count() == planned_before
    assert not regimen.doses.filter(status="cancelled").exists()


@pytest.mark.parametrize(
    ("value", "collected", "warns"),
    [
        # RULES S-2: "most recent platelet count is < 50": exactly 50 does not warn.
        ("50", datetime(2027, 1, 3, 9, 0, tzinfo=UTC), False),
        ("49.9", datetime(2027, 1, 3, 9, 0, tzinfo=UTC), True),
        # "no platelet count within 7 days while the last one was < 100": 7 days back is within.
        ("99", datetime(2026, 12, 28, 9, 0, tzinfo=UTC), False),
        ("99", datetime(2026, 12, 27, 9, 0, tzinfo=UTC), True),
        # ... and a last count of exactly 100, 8 days back, does not warn.
        ("100", datetime(2026, 12, 27, 9, 0, tzinfo=UTC), False),
        ("250", datetime(2026, 6, 1, 9, 0, tzinfo=UTC), False),
    ],
)
def test_it_applies_the_platelet_thresholds_and_the_lookback_window_exactly(
    patient: Any, value: str, collected: datetime, warns: bool
) -> None:
    platelets(patient, value, collected)

    warning = safety.platelet_warning(patient=patient, at=GIVEN_AT)

    assert (warning is not None) == warns
    if warning is not None:
        assert warning.code == "im_injection_low_platelets"


def test_it_judges_the_latest_count_only_and_ignores_counts_taken_after_the_dose(patient: Any) -> None:
    # A low count later recovered: the most recent one decides.
    platelets(patient, "30", datetime(2027, 1, 1, 9, 0, tzinfo=UTC))
    platelets(patient, "180", datetime(2027, 1, 3, 9, 0, tzinfo=UTC))
    assert safety.platelet_warning(patient=patient, at=GIVEN_AT) is None
    # A count collected after the injection says nothing about it.
    platelets(patient, "20", datetime(2027, 1, 4, 15, 0, tzinfo=UTC))
    assert safety.platelet_warning(patient=patient, at=GIVEN_AT) is None
    # No count at all: the rule needs one.
    assert safety.platelet_warning(patient=patient, at=datetime(2026, 12, 1, tzinfo=UTC)) is None


def test_the_platelet_thresholds_are_settings(patient: Any, settings: Any) -> None:
    platelets(patient, "60", datetime(2027, 1, 3, 9, 0, tzinfo=UTC))
    assert safety.platelet_warning(patient=patient, at=GIVEN_AT) is None

    settings.COBALT = {**settings.COBALT, "SAFETY_S2_PLATELETS_BELOW": 70}

    assert safety.platelet_warning(patient=patient, at=GIVEN_AT) is not None


def test_it_does_not_warn_about_platelets_for_a_deep_sc_cyanocobalamin_dose(api: APIClient, patient: Any) -> None:
    # Given cyanocobalamin (label-permitted deep SC) and platelets of 30
    patient.deficiency_cause = "diet"
    patient.save()
    regimen = start(patient, code="cyano-1000-weekly")
    platelets(patient, "30", datetime(2027, 1, 3, 9, 0, tzinfo=UTC))

    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        response = api.post(
            f"/api/doses/{first_dose(regimen).pk}/administer/",
            {"administered_at": "2027-01-04T10:30:00+00:00", "route": "deep SC"},
            format="json",
        )

    assert response.status_code == 200, response.json()
    assert response.json()["given_route"] == "deep SC"
    assert alerts(patient, "im_injection_low_platelets") == []


# --- S-12: wrong route at administration --------------------------------------------------------


@pytest.mark.parametrize("route", ["SC", "deep SC", "IV", "PO", "SL", "IN"])  # RULES S-12; §7.3 "IM only"
def test_it_warns_when_hydroxocobalamin_is_given_by_a_route_other_than_im(
    api: APIClient, patient: Any, route: str
) -> None:
    regimen = start(patient)
    dose = first_dose(regimen)
    body = {"administered_at": "2027-01-04T10:30:00+00:00", "route": route}

    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        refused = api.post(f"/api/doses/{dose.pk}/administer/", body, format="json")
        assert refused.status_code == 400
        assert [(w["code"], w["rule"]) for w in refused.json()["warnings"]] == [("wrong_route", "S-12")]
        assert first_dose(regimen).status == "planned"

        given = api.post(f"/api/doses/{dose.pk}/administer/", {**body, "acknowledge": ["wrong_route"]}, format="json")

    assert given.status_code == 200, given.json()
    dose.refresh_from_db()
    assert dose.acknowledged_warnings == ["wrong_route"]
    [alert] = alerts(patient, "contraindication")
    assert (alert.rule_id, alert.severity) == ("S-12", "high")


def test_it_warns_when_cyanocobalamin_is_given_iv_but_not_sc(api: APIClient, patient: Any) -> None:
    patient.deficiency_cause = "diet"
    patient.save()
    regimen = start(patient, code="cyano-1000-weekly")
    dose = first_dose(regimen)

    assert safety.administration_warnings(dose=dose, route="SC", administered_at=GIVEN_AT) == []
    [warning] = safety.administration_warnings(dose=dose, route="IV", administered_at=GIVEN_AT)
    assert warning.code == "wrong_route"


# --- S-10, S-11: starting a regimen ---------------------------------------------------------------


def test_it_warns_before_starting_cyanocobalamin_for_lebers_disease(clinician_api: APIClient, patient: Any) -> None:
    # Given a patient with Leber's disease
    fact(patient, "lebers_disease", onset_date=date(2020, 3, 1))
    body = {"patient": patient.pk, "protocol": "cyano-1000-weekly", "start_date": "2027-01-04"}

    with time_machine.travel(TODAY, tick=False):
        # When a cyanocobalamin regimen is started without acknowledging
        refused = clinician_api.post("/api/regimens/", body, format="json")

        # Then it is refused with the S-10 warning and no regimen exists
        assert refused.status_code == 400
        assert [(w["code"], w["rule"]) for w in refused.json()["warnings"]] == [
            ("lebers_disease_cyanocobalamin", "S-10")
        ]
        assert not Regimen.objects.filter(patient=patient).exists()

        # When it is acknowledged without a reason, it is refused naming override_reason (a hard stop)
        acked = {**body, "acknowledge": ["lebers_disease_cyanocobalamin"]}
        no_reason = clinician_api.post("/api/regimens/", acked, format="json")
        assert no_reason.status_code == 400
        assert "override_reason" in no_reason.json()
        assert not Regimen.objects.filter(patient=patient).exists()

        # When it is started acknowledging the warning with a reason
        started = clinician_api.post(
            "/api/regimens/", {**acked, "override_reason": "ophthalmology agrees; no OHCbl"}, format="json"
        )

    # Then it starts, the acknowledgement and the reason are kept and one contraindication alert is open
    assert started.status_code == 201, started.json()
    regimen = Regimen.objects.get(patient=patient)
    assert regimen.acknowledged_warnings == ["lebers_disease_cyanocobalamin"]
    assert regimen.override_reason == "ophthalmology agrees; no OHCbl"
    [alert] = alerts(patient, "contraindication")
    assert (alert.rule_id, alert.severity, alert.status) == ("S-10", "high", "open")
    assert alert.evidence["regimen_id"] == regimen.pk
    assert alert.evidence["override_reason"] == "ophthalmology agrees; no OHCbl"
    assert alert.evidence["acknowledged_by"] == "clinician"


def test_it_does_not_warn_about_lebers_disease_for_hydroxocobalamin(patient: Any) -> None:
    fact(patient, "lebers_disease")

    regimen = start(patient, code="hydroxo-uk-standard")

    assert regimen.acknowledged_warnings == []
    assert alerts(patient, "contraindication") == []


def test_it_warns_before_starting_any_b12_for_a_recorded_cobalamin_allergy(
    clinician_api: APIClient, patient: Any
) -> None:
    fact(patient, "cobalamin_allergy", note="anaphylaxis 2019")
    body = {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": "2027-01-04"}

    with time_machine.travel(TODAY, tick=False):
        refused = clinician_api.post("/api/regimens/", body, format="json")
        assert refused.status_code == 400
        [warning] = refused.json()["warnings"]
        assert (warning["code"], warning["rule"]) == ("cobalamin_allergy", "S-11")
        assert warning["details"]["note"] == "anaphylaxis 2019"
        assert not Regimen.objects.filter(patient=patient).exists()

        acked = {**body, "acknowledge": ["cobalamin_allergy"]}
        assert clinician_api.post("/api/regimens/", acked, format="json").json()["override_reason"]
        started = clinician_api.post(
            "/api/regimens/", {**acked, "override_reason": "test dose tolerated"}, format="json"
        )

    assert started.status_code == 201, started.json()
    [alert] = alerts(patient, "contraindication")
    assert alert.rule_id == "S-11"


def test_it_lists_every_warning_and_needs_all_of_them_acknowledged(patient: Any) -> None:
    patient.deficiency_cause = "diet"
    patient.save()
    fact(patient, "lebers_disease")
    fact(patient, "cobalamin_allergy")

    with pytest.raises(WarningsNotAcknowledged) as refused:
        start(patient, code="cyano-1000-weekly", acknowledge=["cobalamin_allergy"])
    assert [w.code for w in refused.value.warnings] == ["lebers_disease_cyanocobalamin"]
    assert not Regimen.objects.filter(patient=patient).exists()

    start(
        patient,
        code="cyano-1000-weekly",
        acknowledge=["cobalamin_allergy", "lebers_disease_cyanocobalamin"],
        override_reason="specialist advice",
    )

    # One alert per kind (RULES §3.6), naming both rules.
    [alert] = alerts(patient, "contraindication")
    assert alert.rule_id == "S-10, S-11"
    assert {w["code"] for w in alert.evidence["warnings"]} == {"cobalamin_allergy", "lebers_disease_cyanocobalamin"}


@pytest.mark.parametrize(
    "values",
    [
        {"absent": True},  # checked and not allergic
        {"onset_date": date(2015, 1, 1), "end_date": date(2016, 1, 1)},  # ended (disproved)
    ],
)
def test_it_does_not_warn_about_an_allergy_that_is_absent_or_ended(patient: Any, values: dict[str, Any]) -> None:
    fact(patient, "cobalamin_allergy", **values)

    regimen = start(patient)

    assert regimen.acknowledged_warnings == []


# --- S-5: stopping lifelong therapy raises its alert ----------------------------------------------


def test_it_raises_the_lifelong_therapy_alert_once_when_s5_is_acknowledged(
    clinician_api: APIClient, patient: Any
) -> None:
    regimen = start(patient)

    with time_machine.travel(TODAY, tick=False):
        refused = clinician_api.post(f"/api/regimens/{regimen.pk}/stop/", {"reason": "moved away"}, format="json")
        assert refused.status_code == 400
        assert alerts(patient, "lifelong_therapy_stopped") == []

        stopped = clinician_api.post(
            f"/api/regimens/{regimen.pk}/stop/",
            {"reason": "moved away", "acknowledge": ["lifelong_therapy_stopped"]},
            format="json",
        )

    assert stopped.status_code == 200, stopped.json()
    [alert] = alerts(patient, "lifelong_therapy_stopped")
    assert (alert.rule_id, alert.severity) == ("S-5", "high")
    assert alert.evidence["stop_reason"] == "moved away"
    assert alert.evidence["acknowledged_by"] == "clinician"


def test_it_raises_no_alert_when_no_warning_applied(clinician_api: APIClient, patient: Any) -> None:
    patient.deficiency_cause = "diet"
    patient.save()
    regimen = start(patient)

    with time_machine.travel(TODAY, tick=False):
        stopped = clinician_api.post(
            f"/api/regimens/{regimen.pk}/stop/",
            # An acknowledgement of a warning that did not apply is not an override.
            {"reason": "diet corrected", "acknowledge": ["lifelong_therapy_stopped"]},
            format="json",
        )

    assert stopped.status_code == 200, stopped.json()
    assert Alert.objects.filter(patient=patient).count() == 0


def test_ending_the_last_open_ended_phase_needs_s5_and_raises_its_alert(clinician_api: APIClient, patient: Any) -> None:
    # Given a patient after gastrectomy on high-dose oral B12 (one clinician-ended phase; §10 V-13). (A
    # pernicious anaemia patient on diet-oral, as before, now meets S-5 already at the start.)
    patient.deficiency_cause = "gastrectomy"
    patient.save()
    regimen = start(patient, code="oral-high-dose")

    with time_machine.travel("2027-01-20 09:00:00+00:00", tick=False):
        refused = clinician_api.post(f"/api/regimens/{regimen.pk}/end-loading/", {}, format="json")
        assert refused.status_code == 400
        assert [w["code"] for w in refused.json()["warnings"]] == ["lifelong_therapy_stopped"]
        assert alerts(patient, "lifelong_therapy_stopped") == []

        # RULES §4 S-5 is a hard stop: acknowledging it is not enough, the override needs a reason.
        for body in ({}, {"override_reason": "x"}):
            unexplained = clinician_api.post(
                f"/api/regimens/{regimen.pk}/end-loading/",
                {"acknowledge": ["lifelong_therapy_stopped"], **body},
                format="json",
            )
            assert unexplained.status_code == 400
            assert list(unexplained.json()) == ["override_reason"]
        regimen.refresh_from_db()
        assert (regimen.status, regimen.acknowledged_warnings, regimen.decisions.count()) == ("active", [], 0)
        assert alerts(patient, "lifelong_therapy_stopped") == []

        ended = clinician_api.post(
            f"/api/regimens/{regimen.pk}/end-loading/",
            {"acknowledge": ["lifelong_therapy_stopped"], "override_reason": "Patient declines further treatment"},
            format="json",
        )

    assert ended.status_code == 200, ended.json()
    regimen.refresh_from_db()
    assert regimen.acknowledged_warnings == ["lifelong_therapy_stopped"]
    assert regimen.decisions.get().note == "Override reason (S-5): Patient declines further treatment"
    [alert] = alerts(patient, "lifelong_therapy_stopped")
    assert alert.evidence["source"] == "regimen_end_phase"
    assert alert.evidence["override_reason"] == "Patient declines further treatment"
    assert alert.evidence["acknowledged_by"] == "clinician"  # who ended the phase (no one "stopped" it)


def test_stopping_lifelong_therapy_needs_a_reason_long_enough_to_override_s5(
    clinician_api: APIClient, patient: Any
) -> None:
    regimen = start(patient)

    with time_machine.travel(TODAY, tick=False):
        refused = clinician_api.post(
            f"/api/regimens/{regimen.pk}/stop/",
            {"reason": "x", "acknowledge": ["lifelong_therapy_stopped"]},
            format="json",
        )

    assert refused.status_code == 400
    assert list(refused.json()) == ["reason"]
    regimen.refresh_from_db()
    assert (regimen.status, regimen.stop_reason) == ("active", "")
    assert alerts(patient, "lifelong_therapy_stopped") == []


def test_it_warns_before_starting_a_protocol_with_a_wrong_route(patient: Any) -> None:
    # Given a locally edited protocol that gives hydroxocobalamin SC (RULES S-12: IM only)
    from regimens.models import ProtocolPhase

    ProtocolPhase.objects.filter(protocol__code="hydroxo-uk-standard", key="maintenance").update(route="SC")

    with pytest.raises(WarningsNotAcknowledged) as refused:
        start(patient)
    [warning] = refused.value.warnings
    assert (warning.code, warning.details["route"]) == ("wrong_route", "SC")
    assert not Regimen.objects.filter(patient=patient).exists()

    regimen = start(patient, acknowledge=["wrong_route"])

    assert regimen.acknowledged_warnings == ["wrong_route"]
    assert alerts(patient, "contraindication")[0].rule_id == "S-12"


def test_an_allergy_recorded_after_the_start_stops_the_next_dose_once(api: APIClient, patient: Any) -> None:
    # Given a regimen started with no allergy known, and an allergy recorded afterwards
    regimen = start(patient)
    fact(patient, "cobalamin_allergy", note="urticaria after last dose elsewhere")
    first = first_dose(regimen)
    body = {"administered_at": "2027-01-04T10:30:00+00:00"}

    with time_machine.travel("2027-01-04 12:00:00+00:00", tick=False):
        refused = api.post(f"/api/doses/{first.pk}/administer/", body, format="json")
        assert refused.status_code == 400
        assert [w["code"] for w in refused.json()["warnings"]] == ["cobalamin_allergy"]

        acked = {**body, "acknowledge": ["cobalamin_allergy"]}
        no_reason = api.post(f"/api/doses/{first.pk}/administer/", acked, format="json")
        assert no_reason.status_code == 400
        assert "override_reason" in no_reason.json()

        given = api.post(
            f"/api/doses/{first.pk}/administer/",
            {**acked, "override_reason": "intradermal test dose tolerated"},
            format="json",
        )
        assert given.status_code == 200, given.json()

    # Then the next dose does not ask again, and one contraindication alert is open
    second = regimen.doses.get(phase="loading", sequence=2, status="planned")
    with time_machine.travel("2027-01-06 12:00:00+00:00", tick=False):
        later = api.post(
            f"/api/doses/{second.pk}/administer/", {"administered_at": "2027-01-06T10:30:00+00:00"}, format="json"
        )
    assert later.status_code == 200, later.json()
    [alert] = alerts(patient, "contraindication")
    assert alert.rule_id == "S-11"
    # A dose has no field for the reason: the override's alert keeps it.
    assert alert.evidence["override_reason"] == "intradermal test dose tolerated"


# --- §1.3 rule 2, §10 V-5: a review recorded as worsening ----------------------------------------


def review(api: APIClient, regimen: Regimen, outcome: str, note: str = "") -> Any:
    with time_machine.travel("2027-01-10 12:00:00+00:00", tick=False):
        return api.post(f"/api/regimens/{regimen.pk}/review/", {"outcome": outcome, "note": note}, format="json")


def test_a_worsening_review_opens_neuro_worsening_high(clinician_api: APIClient, patient: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")

    response = review(clinician_api, regimen, "worsening", "new ataxia")

    assert response.status_code == 200, response.json()
    [found] = alerts(patient, "neuro_worsening")
    assert (found.severity, found.status, found.rule_id) == ("high", "open", "§1.3")
    assert "urgent specialist review" in found.message
    assert found.evidence["note"] == "new ataxia" and found.evidence["regimen_id"] == regimen.pk


@pytest.mark.parametrize("outcome", ["still_improving", "specialist_review_pending"])
def test_other_review_outcomes_open_nothing(clinician_api: APIClient, patient: Any, outcome: str) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")

    review(clinician_api, regimen, outcome)

    assert alerts(patient, "neuro_worsening") == []


def test_a_later_still_improving_review_resolves_neuro_worsening(clinician_api: APIClient, patient: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    review(clinician_api, regimen, "worsening")
    review(clinician_api, regimen, "specialist_review_pending")
    assert alerts(patient, "neuro_worsening")[0].status == "open"

    review(clinician_api, regimen, "still_improving", "improving after specialist review")

    [found] = alerts(patient, "neuro_worsening")
    assert found.status == "resolved" and found.resolution == "later review recorded: still improving"
