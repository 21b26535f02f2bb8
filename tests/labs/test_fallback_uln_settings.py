"""The [P] fallback upper limits are settings with RULES' defaults: MCV 100 fL (RULES §3.3 A-H6 "[P] threshold",
COBALT_MCV_FALLBACK_ULN) and MMA 400 nmol/L (§8 Q4 "fall back to 400 nmol/L [P]", COBALT_MMA_FALLBACK_ULN).
They apply only to a result whose lab sent no range (§3.2: the lab's own range always wins)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from monitoring.rules import PatientContext, Result, a_h6_mcv_not_normalized
from patients.labs.reference_ranges import (
    FALLBACK_ULN_DEFAULTS,
    default_range,
    fallback_uln_problem,
    interpret,
    normal_limits,
    use_fallback_ulns,
)

T0 = date(2027, 1, 4)
WOMAN = PatientContext(sex="female", age=50, t0=T0)


def mcv(day: int, value: int, high: int | None = None) -> Result:
    return Result("mcv", Decimal(value), T0 + timedelta(days=day), ref_high=high)


def with_setting(settings: Any, **values: Any) -> None:
    settings.COBALT = {**settings.COBALT, **values}


def test_the_defaults_are_rules_numbers(settings: Any) -> None:
    assert settings.COBALT["MCV_FALLBACK_ULN"] == 100
    assert settings.COBALT["MMA_FALLBACK_ULN"] == 400
    assert FALLBACK_ULN_DEFAULTS == {"mcv": Decimal(100), "mma": Decimal(400)}
    assert default_range("mcv", "female", 50) is not None
    assert default_range("mcv", "female", 50).high == Decimal(100)  # type: ignore[union-attr]
    assert default_range("mma", "male", 70).high == Decimal(400)  # type: ignore[union-attr]


def test_the_mcv_fallback_uln_follows_its_setting(settings: Any) -> None:
    with_setting(settings, MCV_FALLBACK_ULN=110)

    band = default_range("mcv", "female", 50)
    assert band is not None
    assert (band.low, band.high) == (Decimal(80), Decimal(110))
    assert "site setting" in band.source
    assert interpret(105, band) == "normal"
    assert normal_limits("mcv", None, None, "female", 50) == (Decimal(80), Decimal(110))
    # The reporting lab's own ULN still wins (§3.2).
    assert normal_limits("mcv", None, 100, "female", 50) == (Decimal(80), Decimal(100))


def test_the_mma_fallback_uln_follows_its_setting(settings: Any) -> None:
    assert interpret(420, default_range("mma", "male", 50)) == "high"  # type: ignore[arg-type]

    with_setting(settings, MMA_FALLBACK_ULN=460)

    assert normal_limits("mma", None, None, "male", 50) == (None, Decimal(460))
    assert interpret(420, default_range("mma", "male", 50)) == "normal"  # type: ignore[arg-type]
    assert normal_limits("mma", None, 378, "male", 50) == (None, Decimal(378))


def test_a_h6_fires_on_an_mcv_of_105_at_the_default_100_and_not_with_the_setting_at_110(settings: Any) -> None:
    finding = a_h6_mcv_not_normalized((mcv(56, 105),), WOMAN)
    assert finding is not None and finding.rule_id == "A-H6"

    with_setting(settings, MCV_FALLBACK_ULN=110)

    assert a_h6_mcv_not_normalized((mcv(56, 105),), WOMAN) is None
    assert a_h6_mcv_not_normalized((mcv(56, 111),), WOMAN) is not None
    # A lab range sent with the result is not overruled by the setting.
    assert a_h6_mcv_not_normalized((mcv(56, 105, high=100),), WOMAN) is not None


def test_without_a_source_the_module_uses_the_defaults(settings: Any) -> None:
    from django.apps import apps

    with_setting(settings, MCV_FALLBACK_ULN=110)
    use_fallback_ulns(None)
    try:
        assert default_range("mcv", "female", 50).high == Decimal(100)  # type: ignore[union-attr]
    finally:
        apps.get_app_config("patients").ready()  # installs the settings source again
    assert default_range("mcv", "female", 50).high == Decimal(110)  # type: ignore[union-attr]


def test_a_fallback_uln_must_be_a_number_above_the_default_lln() -> None:
    assert fallback_uln_problem("mcv", 100) is None
    assert fallback_uln_problem("mma", 400) is None
    assert fallback_uln_problem("mcv", 80) is not None  # not above the MCV LLN 80 fL
    assert fallback_uln_problem("mma", 0) is not None
    assert fallback_uln_problem("mma", "abc") is not None


def test_a_bad_fallback_uln_stops_the_system_check(settings: Any) -> None:
    from monitoring.checks import fallback_uln_settings

    assert fallback_uln_settings(None) == []
    with_setting(settings, MCV_FALLBACK_ULN=70, MMA_FALLBACK_ULN=-1)
    errors = fallback_uln_settings(None)
    assert [e.id for e in errors] == ["cobalt.E004", "cobalt.E004"]
    assert "COBALT_MCV_FALLBACK_ULN" in errors[0].msg
