"""S-3 as a pure function (RULES §4 S-3, §10 V-7): the TMA pattern read on inputs collected within 7 days [P]
of each other, and the pre-treatment B12 deciding between `pseudo_tma_pattern` and `tma_pattern_b12_not_low`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from monitoring.rules.base import DEFAULT_SETTINGS, B12Verdict, PatientContext, Result, StoredResult
from monitoring.rules.patterns import (
    S3_B12_NOT_LOW_TEXT,
    S3_BANNER,
    Inputs,
    pseudo_tma_pattern,
    tma_pattern_b12_not_low,
)

DAY = date(2027, 1, 4)


def stored(*rows: tuple[str, str, int]) -> list[StoredResult]:
    """(analyte, value, days after DAY) -> stored results, oldest first."""
    out = [
        StoredResult(i, Result(analyte, Decimal(value), DAY + timedelta(days=offset)))
        for i, (analyte, value, offset) in enumerate(rows, start=1)
    ]
    return sorted(out, key=lambda s: (s.result.collected_on, s.id))


PENDING = B12Verdict()  # no pre-treatment B12


def inputs(rows: list[StoredResult], b12: B12Verdict = PENDING, **settings: int) -> Inputs:
    return Inputs(
        patient=None,
        at=datetime(2027, 2, 1, 12, tzinfo=UTC),
        today=date(2027, 2, 1),
        t0=None,
        stored=rows,
        facts=[],
        ctx=PatientContext(sex="female", age=50),
        settings=replace(DEFAULT_SETTINGS, **settings),
        b12=b12,
    )


def pattern(hb_day: int = 0, plt_day: int = 0, ldh_day: int = 0) -> list[StoredResult]:
    # Hb below the female LLN 120, platelets below 150, LDH above the ULN 222 (RULES §5.2 defaults).
    return stored(("hemoglobin", "85", hb_day), ("platelets", "60", plt_day), ("ldh", "3000", ldh_day))


DEFICIENT = B12Verdict("deficient", "NG239", (99,))
INDETERMINATE = B12Verdict("indeterminate", "NG239", (99,))
NOT_LOW = B12Verdict("unlikely", "NG239", (99,))


@pytest.mark.parametrize(
    ("b12", "shown"), [(PENDING, "pending"), (DEFICIENT, "deficient"), (INDETERMINATE, "indeterminate")]
)
def test_it_is_pseudo_tma_when_the_pre_treatment_b12_is_low_or_pending(b12: B12Verdict, shown: str) -> None:
    inp = inputs(pattern(), b12)

    finding = pseudo_tma_pattern(inp)

    assert finding is not None and finding.severity == "critical" and finding.rule_id == "S-3"
    assert S3_BANNER in finding.message and f"B12: {shown}." in finding.message
    assert tma_pattern_b12_not_low(inp) is None


def test_it_opens_tma_pattern_b12_not_low_when_the_pre_treatment_b12_is_not_low() -> None:
    inp = inputs(pattern(), NOT_LOW)

    finding = tma_pattern_b12_not_low(inp)

    assert finding is not None
    assert (finding.kind, finding.severity, finding.rule_id) == ("tma_pattern_b12_not_low", "critical", "S-3")
    assert finding.message.startswith("TMA pattern without low B12: exclude TTP urgently; ADAMTS13")
    assert S3_B12_NOT_LOW_TEXT == "TMA pattern without low B12: exclude TTP urgently; ADAMTS13"  # RULES V-7 verbatim
    assert "never delays or blocks plasma exchange" in finding.action_text
    assert pseudo_tma_pattern(inp) is None


@pytest.mark.parametrize(("days_apart", "found"), [(6, True), (7, True), (8, False), (10, False)])
def test_it_needs_hb_and_platelets_within_7_days_of_each_other(days_apart: int, found: bool) -> None:
    inp = inputs(pattern(hb_day=0, plt_day=days_apart, ldh_day=days_apart))

    assert (pseudo_tma_pattern(inp) is not None) is found
    assert (tma_pattern_b12_not_low(replace(inp, b12=NOT_LOW)) is not None) is found


@pytest.mark.parametrize(("ldh_day", "found"), [(-7, True), (-8, False), (7, True), (8, False)])
def test_it_counts_a_haemolysis_marker_only_within_7_days_of_the_hb_and_platelets(ldh_day: int, found: bool) -> None:
    inp = inputs(pattern(hb_day=0, plt_day=0, ldh_day=ldh_day))

    assert (pseudo_tma_pattern(inp) is not None) is found


def test_it_measures_the_7_days_across_all_three_inputs() -> None:
    # Hb day 0 and platelets day 5 are close, and LDH day 9 is close to the platelets but 9 days from the Hb.
    assert pseudo_tma_pattern(inputs(pattern(hb_day=0, plt_day=5, ldh_day=9))) is None
    assert pseudo_tma_pattern(inputs(pattern(hb_day=0, plt_day=5, ldh_day=7))) is not None


def test_the_7_days_are_a_setting() -> None:
    far = pattern(hb_day=0, plt_day=10, ldh_day=10)

    assert pseudo_tma_pattern(inputs(far)) is None
    assert pseudo_tma_pattern(inputs(far, s3_inputs_within_days=10)) is not None
    assert DEFAULT_SETTINGS.s3_inputs_within_days == 7  # RULES §10 V-7 [P]


def test_no_pattern_without_haemolysis_whatever_the_b12() -> None:
    rows = stored(("hemoglobin", "85", 0), ("platelets", "60", 0), ("ldh", "200", 0))

    assert pseudo_tma_pattern(inputs(rows)) is None
    assert tma_pattern_b12_not_low(inputs(rows, NOT_LOW)) is None


def test_the_alert_text_shows_values_for_people() -> None:
    rows = stored(
        ("hemoglobin", "85.000000", 0),
        ("platelets", "60.000000", 0),
        ("ldh", "3000.000000", 0),
        ("haptoglobin", "0.050000", 0),
    )

    finding = pseudo_tma_pattern(inputs(rows))

    assert finding is not None
    assert "LDH 3000 U/L (13.5 x ULN)" in finding.message
    assert "haptoglobin 0.05 g/L" in finding.message
    assert ".000000" not in finding.message and "E+" not in finding.message
