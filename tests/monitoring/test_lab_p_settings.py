"""[P] numbers of the lab pipeline are settings, end to end through the API and the evaluation: the A-H6 MCV
fallback ULN (RULES §3.3, COBALT_MCV_FALLBACK_ULN, 100 fL) and the L-4b platelet trigger (RULES §2 L-4b [P],
COBALT_RECHECK_L4B_PLATELETS_BELOW, 50 x10^9/L)."""

from __future__ import annotations

from typing import Any

import pytest

from monitoring.inputs import l4b_platelets_below
from notifications.models import Alert
from patients.models import Patient
from regimens.models import LabRecheck, RecheckStatus
from tests.monitoring.conftest import Enter
from tests.timeline import day, start_treatment

pytestmark = pytest.mark.django_db


def with_setting(settings: Any, **values: Any) -> None:
    settings.COBALT = {**settings.COBALT, **values}


def open_kinds(patient: Patient) -> set[str]:
    return set(Alert.objects.filter(patient=patient).exclude(status="resolved").values_list("kind", flat=True))


def live_rules(patient: Patient) -> set[str]:
    rows = LabRecheck.objects.filter(patient=patient).exclude(status=RecheckStatus.CANCELLED)
    return set(rows.values_list("rule", flat=True))


def test_an_mcv_of_105_without_a_lab_range_opens_a_h6_at_the_default_uln(patient: Patient, enter: Enter) -> None:
    start_treatment(patient)

    body = enter(patient, "mcv", "105", "fL", day(56))

    assert body["interpretation"] == "high"
    assert "mcv_not_normalized" in open_kinds(patient)


def test_an_mcv_of_105_opens_nothing_with_the_uln_set_to_110(settings: Any, patient: Patient, enter: Enter) -> None:
    with_setting(settings, MCV_FALLBACK_ULN=110)
    start_treatment(patient)

    body = enter(patient, "mcv", "105", "fL", day(56))

    assert body["interpretation"] == "normal"
    assert "mcv_not_normalized" not in open_kinds(patient)


def test_the_l4b_trigger_is_a_setting(settings: Any, patient: Patient, enter: Enter) -> None:
    assert l4b_platelets_below() == 50  # RULES §2 L-4b default
    start_treatment(patient)
    enter(patient, "platelets", "60", "10^9/L", day(-1))  # below the LLN 150 (L-4), not below 50
    assert "L-4" in live_rules(patient)
    assert "L-4b" not in live_rules(patient)


def test_baseline_platelets_of_60_plan_l4b_with_the_trigger_set_to_70(
    settings: Any, patient: Patient, enter: Enter
) -> None:
    with_setting(settings, RECHECK_L4B_PLATELETS_BELOW=70)
    start_treatment(patient)

    enter(patient, "platelets", "60", "10^9/L", day(-1))

    assert {"L-4", "L-4b"} <= live_rules(patient)
