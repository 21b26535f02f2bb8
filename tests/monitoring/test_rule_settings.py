"""The rule numbers have one definition (RuleSettings); the environment only overrides them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

from monitoring.inputs import rule_settings
from monitoring.rules import DEFAULT_SETTINGS


def test_it_uses_the_rule_defaults_when_nothing_is_overridden() -> None:
    assert settings.COBALT["RULE_OVERRIDES"] == {}
    assert rule_settings() == DEFAULT_SETTINGS


def test_it_applies_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    overrides = {
        "RULES_A_H2_WINDOW": "10,18",
        "RULES_A_H5_FLOOR": "65",
        "RULES_A_P3_FALL_PERCENT": "40",
        "RULES_TRANSFUSION_SUPPRESSION_DAYS": "21",
        "POTASSIUM_CHECK_HB_BELOW": "75",
        "NEURO_TREATMENT_DELAY_HOURS": "12",
    }
    monkeypatch.setitem(settings.COBALT, "RULE_OVERRIDES", overrides)

    rs = rule_settings()

    assert rs.a_h2_window == (10, 18)
    assert rs.a_h5_floor == Decimal(65)
    assert rs.a_p3_fall_fraction == Decimal("0.4")
    assert rs.transfusion_suppression_days == 21
    assert rs.potassium_check_hb_below == Decimal(75)
    assert rs.neuro_treatment_delay_hours == 12
    assert rs.a_h3_window == DEFAULT_SETTINGS.a_h3_window  # untouched numbers keep their default


def test_the_s3_input_window_is_overridden_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(settings.COBALT, "RULE_OVERRIDES", {"S3_INPUTS_WITHIN_DAYS": "5"})

    assert DEFAULT_SETTINGS.s3_inputs_within_days == 7  # RULES §10 V-7 [P]
    assert rule_settings().s3_inputs_within_days == 5


def test_every_override_key_names_a_rule_setting() -> None:
    from tracker.settings.cobalt_monitoring import RULE_OVERRIDE_KEYS

    fields = set(DEFAULT_SETTINGS.__dataclass_fields__) | {"a_p3_fall_percent", "a_l1_min_fall_percent"}
    assert {key.lower().removeprefix("rules_") for key in RULE_OVERRIDE_KEYS} <= fields
