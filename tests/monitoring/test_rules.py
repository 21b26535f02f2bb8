"""The haematological response rules, RULES §3.3-§3.6 (monitoring/rules/). Pure: no database.

Expected results are worked out by hand from RULES; default limits are §5.2 (Hb LLN 120 female,
130 male, 110 pregnant; platelets 150-400; MCV 80-100; reticulocytes 0.2-2.0 %; LDH 122-222).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from monitoring.rules import (
    TRANSFUSION_NOTE,
    Finding,
    PatientContext,
    Result,
    RuleSettings,
    a_h1_no_reticulocyte_response,
    a_h2_slow_early_rise,
    a_h3_slow_rise_4_weeks,
    a_h4_hb_not_normalized,
    a_h5_hb_falling,
    a_h6_mcv_not_normalized,
    a_h7_hb_refractory,
    a_l1_ldh_not_falling,
    a_l2_ldh_not_normalized,
    a_p1_platelets_not_rising,
    a_p2_platelets_not_normalized,
    a_p3_platelets_critical,
    a_p4_persistent_thrombocytopenia,
    a_p5_platelets_rebound,
    evaluate,
    resolved_kinds,
    transfusion_note,
)

T0 = date(2027, 1, 4)
MAN = PatientContext(sex="male", age=50, t0=T0)
WOMAN = PatientContext(sex="female", age=50, t0=T0)

# RULES first section, "Alert kinds" (the hematological ones).
ALERT_KINDS = {
    "no_reticulocyte_response",
    "hemoglobin_slow_rise",
    "hemoglobin_not_normalized",
    "hemoglobin_falling",
    "mcv_not_normalized",
    "hemoglobin_refractory",
    "platelets_not_rising",
    "platelets_not_normalized",
    "platelets_critical",
    "platelets_rebound",
    "ldh_not_falling",
    "ldh_not_normalized",
}


def on(day: int) -> date:
    return T0 + timedelta(days=day)


def r(analyte: str, day: int, value: float | str, low: float | None = None, high: float | None = None) -> Result:
    return Result(analyte, Decimal(str(value)), on(day), ref_low=low, ref_high=high)


def hb(day: int, value: float | str, low: float | None = None) -> Result:
    return r("hemoglobin", day, value, low=low)


def plt(day: int, value: float | str) -> Result:
    return r("platelets", day, value)


def retic(day: int, value: float | str, high: float | None = None) -> Result:
    return r("reticulocytes_pct", day, value, high=high)


def ldh(day: int, value: float | str) -> Result:
    return r("ldh", day, value)


def transfused(ctx: PatientContext, *days: int) -> PatientContext:
    return PatientContext(ctx.sex, ctx.age, ctx.pregnant, ctx.t0, tuple(on(d) for d in days))


def only(finding: Finding | None) -> Finding:
    assert finding is not None
    assert finding.kind in ALERT_KINDS
    return finding


# --- A-H1 ------------------------------------------------------------------------------------------


def test_it_flags_reticulocytes_not_above_the_uln_on_days_5_to_10() -> None:
    for day in (5, 7, 10):
        finding = only(a_h1_no_reticulocyte_response((hb(-1, 90), retic(day, "1.8")), WOMAN))
        assert (finding.kind, finding.rule_id, finding.severity) == ("no_reticulocyte_response", "A-H1", "high")


def test_it_counts_reticulocytes_exactly_at_the_uln_as_not_above_it() -> None:
    assert a_h1_no_reticulocyte_response((hb(-1, 90), retic(7, "2.0")), WOMAN) is not None


def test_it_ignores_reticulocytes_outside_days_5_to_10() -> None:
    assert a_h1_no_reticulocyte_response((hb(-1, 90), retic(4, "1.0"), retic(11, "1.0")), WOMAN) is None


def test_it_does_not_judge_a_late_reticulocyte_count_by_a_h1() -> None:
    # V-8 does not extend A-H1: after the day-5-10 peak the count falls back into the range in responders too.
    for day in (11, 20, 56):
        assert a_h1_no_reticulocyte_response((hb(-1, 90), retic(day, "1.0")), WOMAN) is None, day


def test_it_accepts_a_response_when_the_peak_was_above_the_uln() -> None:
    # Peak 5.0 on day 6 (above 2 x ULN); the later fall on day 9 is expected (§3.1) and Hb is normal.
    results = (retic(6, "5.0"), retic(9, "4.5"), hb(9, 125))
    assert a_h1_no_reticulocyte_response(results, WOMAN) is None


def test_it_does_not_flag_a_normal_reticulocyte_count_in_a_non_anaemic_patient() -> None:
    # A-H1 is read "while haematocrit < 35 %" for both clauses: no anaemia, no reticulocyte response expected.
    assert a_h1_no_reticulocyte_response((hb(-1, 135), retic(7, "1.0")), WOMAN) is None
    assert a_h1_no_reticulocyte_response((r("hematocrit", 7, "0.40"), retic(7, "1.0")), WOMAN) is None
    assert a_h1_no_reticulocyte_response((retic(7, "1.0"),), WOMAN) is None  # no Hb, no haematocrit: unknown
    # The same counts in an anaemic patient fire.
    assert a_h1_no_reticulocyte_response((hb(-1, 119), retic(7, "1.0")), WOMAN) is not None
    assert a_h1_no_reticulocyte_response((r("hematocrit", 7, "0.34"), retic(7, "1.0")), WOMAN) is not None


def test_it_judges_anaemia_on_the_most_recent_of_haematocrit_and_hb() -> None:
    # An old anaemic haematocrit does not outweigh a newer normal Hb, and the reverse.
    old_hct_new_hb = (r("hematocrit", -1, "0.30"), hb(7, 125), retic(7, "3.0"))
    assert a_h1_no_reticulocyte_response(old_hct_new_hb, WOMAN) is None
    old_hb_new_hct = (hb(-1, 125), r("hematocrit", 7, "0.30"), retic(7, "3.0"))
    assert a_h1_no_reticulocyte_response(old_hb_new_hct, WOMAN) is not None
    # Same day: the haematocrit is used.
    same_day = (hb(7, 100), r("hematocrit", 7, "0.36"), retic(7, "3.0"))
    assert a_h1_no_reticulocyte_response(same_day, WOMAN) is None


def test_it_flags_reticulocytes_below_twice_normal_while_haematocrit_is_below_35_percent() -> None:
    low_hct = (retic(7, "3.0"), r("hematocrit", 7, "0.30"))
    assert only(a_h1_no_reticulocyte_response(low_hct, WOMAN)).evidence["clause"] == "not >= 2x normal"
    assert a_h1_no_reticulocyte_response((retic(7, "3.0"), r("hematocrit", 7, "0.35")), WOMAN) is None
    assert a_h1_no_reticulocyte_response((retic(7, "4.0"), r("hematocrit", 7, "0.30")), WOMAN) is None


def test_it_uses_hb_below_lln_as_the_haematocrit_proxy() -> None:
    assert a_h1_no_reticulocyte_response((retic(7, "3.0"), hb(7, 100)), WOMAN) is not None
    assert a_h1_no_reticulocyte_response((retic(7, "3.0"), hb(7, 120)), WOMAN) is None


def test_it_uses_the_labs_own_reticulocyte_range_over_the_default() -> None:
    # 2.5 % is above the default ULN 2.0 but not above this lab's 3.0.
    assert a_h1_no_reticulocyte_response((hb(-1, 90), retic(7, "2.5", high=3.0)), WOMAN) is not None
    assert a_h1_no_reticulocyte_response((retic(7, "2.5"), hb(7, 125)), WOMAN) is None


# --- A-H2 ------------------------------------------------------------------------------------------


def test_it_flags_a_day_14_rise_below_10_over_an_anaemic_baseline() -> None:
    finding = only(a_h2_slow_early_rise((hb(-3, 90), hb(14, 99)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("hemoglobin_slow_rise", "A-H2", "medium")
    assert finding.evidence["rise"] == "9"


def test_it_accepts_a_rise_of_exactly_10() -> None:
    assert a_h2_slow_early_rise((hb(-3, 90), hb(14, 100)), WOMAN) is None


def test_it_applies_a_h2_from_day_11_to_day_17_and_after_a_missed_window_until_a_h3_opens() -> None:
    # V-8: with no Hb in days 11-17, an Hb on days 18-23 is judged by A-H2; from day 24 A-H3 judges it.
    for day, expected in ((10, False), (11, True), (17, True), (18, True), (23, True), (24, False)):
        assert (a_h2_slow_early_rise((hb(-3, 90), hb(day, 95)), WOMAN) is not None) is expected, day
    # A window that had its result is not extended: the day-14 Hb rose enough, the day-18 one is not judged.
    assert a_h2_slow_early_rise((hb(-3, 90), hb(14, 101), hb(18, 95)), WOMAN) is None


def test_it_needs_a_baseline_below_lln_for_a_h2() -> None:
    assert a_h2_slow_early_rise((hb(14, 95),), WOMAN) is None  # no baseline
    assert a_h2_slow_early_rise((hb(-3, 120), hb(14, 121)), WOMAN) is None  # baseline exactly LLN: normal


def test_it_takes_a_same_day_pre_dose_sample_as_the_baseline() -> None:
    # Baseline = latest on or before T0: day 0 (90), not day -10 (80). Rise 9 -> A-H2; from 80 it would be 19.
    finding = only(a_h2_slow_early_rise((hb(-10, 80), hb(0, 90), hb(14, 99)), WOMAN))
    assert finding.evidence["baseline"] == "90"


# --- A-H3 ------------------------------------------------------------------------------------------


def test_it_flags_a_day_28_hb_below_lln_with_a_rise_below_20_as_medium() -> None:
    finding = only(a_h3_slow_rise_4_weeks((hb(-1, 80), hb(28, 95)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("hemoglobin_slow_rise", "A-H3", "medium")


def test_it_makes_a_h3_high_when_the_rise_is_below_10() -> None:
    assert only(a_h3_slow_rise_4_weeks((hb(-1, 80), hb(28, 89)), WOMAN)).severity == "high"
    assert only(a_h3_slow_rise_4_weeks((hb(-1, 80), hb(28, 90)), WOMAN)).severity == "medium"


def test_it_accepts_a_rise_of_20_or_an_hb_at_lln_at_day_28() -> None:
    assert a_h3_slow_rise_4_weeks((hb(-1, 80), hb(28, 100)), WOMAN) is None
    assert a_h3_slow_rise_4_weeks((hb(-1, 110), hb(28, 120)), WOMAN) is None
    # The same Hb is below a man's LLN 130: rise 10 -> medium.
    assert only(a_h3_slow_rise_4_weeks((hb(-1, 110), hb(28, 120)), MAN)).severity == "medium"


def test_it_applies_a_h3_from_day_24_to_day_32_and_after_a_missed_window_until_a_h4_opens() -> None:
    for day, expected in ((23, False), (24, True), (32, True), (33, True), (48, True), (49, False)):
        assert (a_h3_slow_rise_4_weeks((hb(-1, 80), hb(day, 95)), WOMAN) is not None) is expected, day


def test_it_needs_a_baseline_for_a_h3() -> None:
    assert a_h3_slow_rise_4_weeks((hb(28, 95),), WOMAN) is None


# --- A-H4 ------------------------------------------------------------------------------------------


def test_it_flags_hb_125_at_week_8_for_a_man_but_not_for_a_woman() -> None:
    finding = only(a_h4_hb_not_normalized((hb(56, 125),), MAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("hemoglobin_not_normalized", "A-H4", "high")
    assert a_h4_hb_not_normalized((hb(56, 125),), WOMAN) is None


def test_it_counts_hb_exactly_at_lln_as_normal() -> None:
    assert a_h4_hb_not_normalized((hb(56, 130),), MAN) is None


def test_it_applies_a_h4_from_day_49_to_day_63_and_after_a_missed_window_until_a_h7_opens() -> None:
    # V-8: a day-70 Hb below the LLN fires A-H4 (window 49-63, no result in it); from day 76 A-H7 judges it.
    for day, expected in ((48, False), (49, True), (63, True), (64, True), (70, True), (75, True), (76, False)):
        assert (a_h4_hb_not_normalized((hb(day, 125),), MAN) is not None) is expected, day
    late = only(a_h4_hb_not_normalized((hb(70, 125),), MAN))
    assert (late.evidence["judged_late"], late.evidence["missed_window"]) == (True, "49-63")
    assert "Judged late" in late.message
    assert "judged_late" not in only(a_h4_hb_not_normalized((hb(63, 125),), MAN)).evidence  # day 63: in time
    assert only(a_h4_hb_not_normalized((hb(64, 125),), MAN)).evidence["judged_late"] is True  # day 64: late


def test_it_judges_a_result_after_a_window_only_when_the_window_had_none() -> None:
    # Day 63 normal (in the window): the day-64 low Hb is not A-H4's; A-H7's window has not opened.
    assert a_h4_hb_not_normalized((hb(63, 131), hb(64, 125)), MAN) is None
    # Day 63 low and day 64 low: judged on the in-window day 63.
    assert only(a_h4_hb_not_normalized((hb(63, 125), hb(64, 120)), MAN)).evidence["day"] == 63
    # Several late results: the latest before A-H7 opens is judged.
    assert a_h4_hb_not_normalized((hb(66, 125), hb(72, 131)), MAN) is None
    assert only(a_h4_hb_not_normalized((hb(66, 131), hb(72, 125)), MAN)).evidence["day"] == 72


def test_it_uses_the_labs_own_hb_range_over_the_sex_default() -> None:
    assert a_h4_hb_not_normalized((hb(56, 125, low=120),), MAN) is None


def test_it_uses_the_pregnancy_lln() -> None:
    pregnant = PatientContext(sex="female", age=30, pregnant=True, t0=T0)
    assert a_h4_hb_not_normalized((hb(56, 115),), pregnant) is None
    assert a_h4_hb_not_normalized((hb(56, 115),), WOMAN) is not None


def test_it_judges_the_latest_hb_in_the_window() -> None:
    assert a_h4_hb_not_normalized((hb(50, 110), hb(60, 135)), MAN) is None


# --- A-H5 ------------------------------------------------------------------------------------------


def test_it_flags_an_hb_20_lower_than_the_previous_value() -> None:
    finding = only(a_h5_hb_falling((hb(-1, 100), hb(10, 80)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("hemoglobin_falling", "A-H5", "critical")
    assert a_h5_hb_falling((hb(-1, 100), hb(10, 81)), WOMAN) is None


def test_it_flags_any_post_t0_hb_below_70() -> None:
    assert a_h5_hb_falling((hb(100, 69),), WOMAN) is not None
    assert a_h5_hb_falling((hb(100, 70),), WOMAN) is None


def test_it_ignores_a_fall_before_t0() -> None:
    assert a_h5_hb_falling((hb(-10, 100), hb(0, 65)), WOMAN) is None


# --- A-H6 and A-H7 ---------------------------------------------------------------------------------


def test_it_flags_mcv_above_uln_at_week_8() -> None:
    finding = only(a_h6_mcv_not_normalized((r("mcv", 56, 101),), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("mcv_not_normalized", "A-H6", "medium")
    assert a_h6_mcv_not_normalized((r("mcv", 56, 100),), WOMAN) is None
    assert a_h6_mcv_not_normalized((r("mcv", 56, 99, high=98),), WOMAN) is not None
    # V-8: no MCV in days 49-63, and no later MCV window: a later MCV is judged by A-H6.
    assert a_h6_mcv_not_normalized((r("mcv", 64, 110),), WOMAN) is not None
    assert a_h6_mcv_not_normalized((r("mcv", 48, 110),), WOMAN) is None
    assert a_h6_mcv_not_normalized((r("mcv", 56, 100), r("mcv", 64, 110)), WOMAN) is None


def test_it_flags_hb_below_lln_from_day_76_to_day_104_and_after_a_missed_window() -> None:
    # V-8: A-H7 has no next Hb window, so any later Hb is judged by it when days 76-104 had none.
    for day, expected in ((75, False), (76, True), (104, True), (105, True), (200, True)):
        assert (a_h7_hb_refractory((hb(day, 119),), WOMAN) is not None) is expected, day
    assert only(a_h7_hb_refractory((hb(90, 119),), WOMAN)).severity == "high"
    assert a_h7_hb_refractory((hb(90, 120),), WOMAN) is None
    assert a_h7_hb_refractory((hb(90, 120), hb(105, 119)), WOMAN) is None


# --- A-P1..A-P5 ------------------------------------------------------------------------------------


def test_it_flags_platelets_not_above_baseline_on_days_7_to_10() -> None:
    finding = only(a_p1_platelets_not_rising((plt(-1, 100), plt(10, 100)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("platelets_not_rising", "A-P1", "medium")
    assert a_p1_platelets_not_rising((plt(-1, 100), plt(7, 101)), WOMAN) is None
    assert a_p1_platelets_not_rising((plt(-1, 100), plt(6, 90)), WOMAN) is None
    # V-8: day 11 is after A-P1's window and before A-P2 opens (day 12).
    assert a_p1_platelets_not_rising((plt(-1, 100), plt(11, 90)), WOMAN) is not None
    assert a_p1_platelets_not_rising((plt(-1, 100), plt(12, 90)), WOMAN) is None
    assert a_p1_platelets_not_rising((plt(-1, 100), plt(8, 120), plt(11, 90)), WOMAN) is None


def test_it_makes_a_p1_high_while_platelets_are_still_below_50() -> None:
    assert only(a_p1_platelets_not_rising((plt(-1, 49), plt(7, 49)), WOMAN)).severity == "high"
    assert only(a_p1_platelets_not_rising((plt(-1, 50), plt(7, 50)), WOMAN)).severity == "medium"


def test_it_applies_a_p1_a_p2_only_with_a_baseline_below_lln_but_a_p3_to_every_patient() -> None:
    for results in ((plt(7, 40), plt(14, 40)), (plt(-1, 150), plt(7, 140), plt(14, 100))):
        assert a_p1_platelets_not_rising(results, WOMAN) is None
        assert a_p2_platelets_not_normalized(results, WOMAN) is None
    # V-4: A-P3 whatever the baseline (it used to need a baseline below the LLN).
    assert only(a_p3_platelets_critical((plt(-1, 250), plt(7, 19)), WOMAN)).severity == "critical"
    assert only(a_p3_platelets_critical((plt(-1, 250), plt(7, 140)), WOMAN)).rule_id == "A-P3"  # 44 % fall
    assert only(a_p3_platelets_critical((plt(7, 19),), WOMAN)).rule_id == "A-P3"  # no baseline at all


def test_it_flags_platelets_below_lln_on_days_12_to_16_and_after_a_missed_window_until_a_p4_opens() -> None:
    for day, expected in ((11, False), (12, True), (16, True), (17, True), (23, True), (24, False)):
        assert (a_p2_platelets_not_normalized((plt(-1, 100), plt(day, 149)), WOMAN) is not None) is expected
    finding = only(a_p2_platelets_not_normalized((plt(-1, 100), plt(14, 149)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("platelets_not_normalized", "A-P2", "high")
    assert a_p2_platelets_not_normalized((plt(-1, 100), plt(14, 150)), WOMAN) is None


def test_it_flags_platelets_below_20_or_a_30_percent_fall_as_critical() -> None:
    assert only(a_p3_platelets_critical((plt(-1, 25), plt(3, 19)), WOMAN)).severity == "critical"
    assert a_p3_platelets_critical((plt(-1, 25), plt(3, 20)), WOMAN) is None  # 20 % fall, not < 20
    assert a_p3_platelets_critical((plt(-1, 100), plt(3, 70)), WOMAN) is not None  # exactly 30 %
    assert a_p3_platelets_critical((plt(-1, 100), plt(3, 71)), WOMAN) is None


def films(ctx: PatientContext, *entries: tuple[int, bool]) -> PatientContext:
    return replace(ctx, schistocytes=tuple((on(day), present) for day, present in entries))


def test_it_flags_a_30_percent_fall_only_when_it_ends_below_the_lln() -> None:
    # V-4: 600 -> 400 is a 33 % fall to a normal count: not critical. 200 -> 140 is 30 % to below 150: critical.
    assert a_p3_platelets_critical((plt(-1, 600), plt(7, 400)), WOMAN) is None
    assert a_p3_platelets_critical((plt(-1, 214), plt(7, 150)), WOMAN) is None  # 30 % fall, to exactly the LLN
    finding = only(a_p3_platelets_critical((plt(-1, 200), plt(7, 140)), WOMAN))
    assert "below the LLN" in finding.message
    assert a_p3_platelets_critical((plt(-1, 200), plt(7, 141)), WOMAN) is None  # 29.5 %
    # The lab's own range decides "below the LLN".
    assert a_p3_platelets_critical((plt(-1, 200), r("platelets", 7, 140, low=130)), WOMAN) is None


def test_it_flags_new_schistocytes_after_t0_as_critical() -> None:
    counts = (plt(-1, 250), plt(7, 240))
    finding = only(a_p3_platelets_critical(counts, films(WOMAN, (-1, False), (7, True))))
    assert (finding.rule_id, finding.severity, finding.evidence["analyte"]) == ("A-P3", "critical", "schistocytes")
    assert finding.evidence["day"] == 7
    # No film before: also new.
    assert a_p3_platelets_critical(counts, films(WOMAN, (7, True))) is not None
    # The previous film already had them (pre-T0 or post-T0): not new.
    assert a_p3_platelets_critical(counts, films(WOMAN, (-1, True), (7, True))) is None
    # Present only before T0, or reported absent: nothing.
    assert a_p3_platelets_critical(counts, films(WOMAN, (-1, True))) is None
    assert a_p3_platelets_critical(counts, films(WOMAN, (7, False))) is None
    # Present on day 0 (the baseline film) is not "after T0".
    assert a_p3_platelets_critical(counts, films(WOMAN, (0, True))) is None
    # Absent, present, present: the film that made them new is reported.
    found = only(a_p3_platelets_critical(counts, films(WOMAN, (3, False), (5, True), (9, True))))
    assert found.evidence["day"] == 5


def test_it_resolves_a_p3_only_when_counts_and_film_are_both_safe() -> None:
    ctx = films(WOMAN, (-1, False), (5, True))
    assert "platelets_critical" not in resolved_kinds((plt(-1, 250), plt(7, 240)), ctx)
    cleared = films(WOMAN, (-1, False), (5, True), (9, False))
    assert "platelets_critical" in resolved_kinds((plt(-1, 250), plt(7, 240)), cleared)
    assert "platelets_critical" in resolved_kinds((), cleared)  # a clear film alone meets the film target
    assert "platelets_critical" not in resolved_kinds((plt(-1, 30), plt(7, 19)), cleared)
    assert "platelets_critical" not in resolved_kinds((), WOMAN)  # nothing after T0: nothing shown safe


def test_it_flags_platelets_still_below_lln_around_day_28() -> None:
    finding = only(a_p4_persistent_thrombocytopenia((plt(-1, 100), plt(28, 140)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("platelets_not_normalized", "A-P4", "high")
    # V-8: no count in days 24-32 and no later platelet window: a later count is judged by A-P4.
    assert only(a_p4_persistent_thrombocytopenia((plt(-1, 100), plt(33, 140)), WOMAN)).evidence["judged_late"]
    assert a_p4_persistent_thrombocytopenia((plt(-1, 100), plt(28, 150), plt(33, 140)), WOMAN) is None


def test_it_notes_rebound_thrombocytosis_above_uln() -> None:
    finding = only(a_p5_platelets_rebound((plt(-1, 100), plt(20, 401)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("platelets_rebound", "A-P5", "info")
    assert a_p5_platelets_rebound((plt(-1, 100), plt(20, 400)), WOMAN) is None


# --- A-L1, A-L2 ------------------------------------------------------------------------------------


def test_it_flags_ldh_falling_less_than_half_from_a_baseline_above_twice_uln() -> None:
    finding = only(a_l1_ldh_not_falling((ldh(-1, 500), ldh(7, 251)), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("ldh_not_falling", "A-L1", "high")
    assert a_l1_ldh_not_falling((ldh(-1, 500), ldh(7, 250)), WOMAN) is None  # exactly 50 %
    assert a_l1_ldh_not_falling((ldh(-1, 444), ldh(7, 440)), WOMAN) is None  # baseline exactly 2 x 222
    # V-8: with no LDH in days 5-9, an LDH before day 24 (A-L2 opens) is judged by A-L1.
    for day, expected in ((4, False), (5, True), (9, True), (10, True), (23, True), (24, False)):
        assert (a_l1_ldh_not_falling((ldh(-1, 500), ldh(day, 400)), WOMAN) is not None) is expected, day


def test_it_flags_ldh_above_uln_around_day_28() -> None:
    finding = only(a_l2_ldh_not_normalized((ldh(28, 223),), WOMAN))
    assert (finding.kind, finding.rule_id, finding.severity) == ("ldh_not_normalized", "A-L2", "medium")
    assert a_l2_ldh_not_normalized((ldh(28, 222),), WOMAN) is None
    assert a_l2_ldh_not_normalized((ldh(23, 300),), WOMAN) is None
    # V-8: no LDH in days 24-32 and no later LDH window: a later LDH is judged by A-L2.
    assert a_l2_ldh_not_normalized((ldh(33, 300),), WOMAN) is not None
    assert a_l2_ldh_not_normalized((ldh(28, 200), ldh(33, 300)), WOMAN) is None


# --- §3.6 transfusion ------------------------------------------------------------------------------


def test_it_suppresses_a_h4_for_14_days_after_a_transfusion_and_shows_the_note() -> None:
    results = (hb(-1, 80), hb(56, 125))
    assert a_h4_hb_not_normalized(results, transfused(MAN, 42)) is None  # 14 days before
    assert transfusion_note(results, transfused(MAN, 42)) == TRANSFUSION_NOTE
    assert a_h4_hb_not_normalized(results, transfused(MAN, 41)) is not None  # 15 days before
    assert transfusion_note(results, transfused(MAN, 41)) is None
    assert a_h4_hb_not_normalized(results, transfused(MAN, 57)) is not None  # after the sample


def test_it_suppresses_a_h2_and_a_h3_after_a_transfusion_but_not_a_h7() -> None:
    assert a_h2_slow_early_rise((hb(-1, 80), hb(14, 85)), transfused(WOMAN, 10)) is None
    assert a_h3_slow_rise_4_weeks((hb(-1, 80), hb(28, 85)), transfused(WOMAN, 20)) is None
    assert a_h7_hb_refractory((hb(90, 100),), transfused(WOMAN, 85)) is not None


def test_it_still_judges_an_in_window_hb_drawn_before_the_transfusion() -> None:
    results = (hb(50, 110), hb(56, 140))
    ctx = transfused(MAN, 52)
    assert only(a_h4_hb_not_normalized(results, ctx)).evidence["day"] == 50
    # The transfused Hb 140 does not close the alert either.
    assert "hemoglobin_not_normalized" not in resolved_kinds(results, ctx)
    assert [f.kind for f in evaluate(results, ctx)] == ["hemoglobin_not_normalized"]


# --- evaluate and resolved_kinds -------------------------------------------------------------------


def test_it_returns_one_finding_per_kind_preferring_the_later_rule() -> None:
    # A-H2 (rise 5 at day 14) and A-H3 (rise 8 at day 28, HIGH) share hemoglobin_slow_rise.
    findings = evaluate((hb(-1, 80), hb(14, 85), hb(28, 88)), WOMAN)
    slow = [f for f in findings if f.kind == "hemoglobin_slow_rise"]
    assert len(slow) == 1
    assert (slow[0].rule_id, slow[0].severity, slow[0].evidence["also_met"]) == ("A-H3", "high", "A-H2")
    assert "A-H2" in slow[0].message
    # A-P2 at day 14 and A-P4 at day 28 share platelets_not_normalized.
    findings = evaluate((plt(-1, 100), plt(14, 140), plt(28, 140)), WOMAN)
    assert [(f.kind, f.rule_id) for f in findings] == [("platelets_not_normalized", "A-P4")]


def test_it_uses_only_kinds_from_the_alert_table() -> None:
    results = (
        hb(-1, 80), plt(-1, 40), ldh(-1, 600), retic(7, "1.0"), plt(7, 30), ldh(7, 500),
        hb(14, 85), plt(14, 40), hb(28, 88), ldh(28, 400), r("mcv", 56, 110), hb(56, 60), plt(56, 10),
    )  # fmt: skip
    kinds = [f.kind for f in evaluate(results, WOMAN)]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) <= ALERT_KINDS
    assert {"no_reticulocyte_response", "hemoglobin_falling", "platelets_critical", "ldh_not_falling"} <= set(kinds)


def test_it_resolves_hb_and_platelet_alerts_when_a_later_result_meets_the_target() -> None:
    results = (hb(-1, 80), hb(56, 125), hb(70, 131), plt(-1, 100), plt(14, 140), plt(21, 150))
    closed = resolved_kinds(results, MAN)
    assert {"hemoglobin_not_normalized", "hemoglobin_refractory", "platelets_not_normalized"} <= closed
    assert evaluate(results, MAN) == []


def test_it_resolves_falling_alerts_only_when_the_latest_value_is_safe() -> None:
    assert "hemoglobin_falling" not in resolved_kinds((hb(-1, 100), hb(10, 80)), WOMAN)
    assert "hemoglobin_falling" in resolved_kinds((hb(-1, 100), hb(10, 80), hb(12, 85)), WOMAN)
    assert "hemoglobin_falling" not in resolved_kinds((hb(-1, 100), hb(10, 75), hb(12, 69)), WOMAN)
    assert "platelets_critical" not in resolved_kinds((plt(-1, 30), plt(3, 19)), WOMAN)
    assert "platelets_critical" in resolved_kinds((plt(-1, 30), plt(3, 19), plt(5, 25)), WOMAN)


def test_it_resolves_mcv_and_ldh_alerts_at_or_below_the_uln() -> None:
    closed = resolved_kinds((r("mcv", 56, 101), r("mcv", 70, 100), ldh(28, 300), ldh(35, 222)), WOMAN)
    assert {"mcv_not_normalized", "ldh_not_falling", "ldh_not_normalized"} <= closed


def test_it_evaluates_nothing_without_a_t0() -> None:
    no_t0 = PatientContext(sex="male", age=50)
    assert evaluate((hb(56, 60),), no_t0) == []
    assert resolved_kinds((hb(56, 60),), no_t0) == set()


def test_it_takes_proposed_numbers_from_settings() -> None:
    stricter = RuleSettings(a_h2_min_rise=Decimal(20))
    assert a_h2_slow_early_rise((hb(-1, 90), hb(14, 105)), WOMAN) is None
    assert a_h2_slow_early_rise((hb(-1, 90), hb(14, 105)), WOMAN, stricter) is not None


# --- RULES §10 V-1: enrolment at maintenance ---------------------------------------------------------


def test_it_applies_only_a_h5_and_a_p3_to_an_enrolment_at_maintenance() -> None:
    enrolled = replace(WOMAN, enrolled=True)
    results = (
        hb(-1, 80), plt(-1, 40), ldh(-1, 600), retic(7, "1.0"), plt(7, 30), ldh(7, 500),
        hb(14, 85), plt(14, 40), hb(28, 88), ldh(28, 400), r("mcv", 56, 110), hb(56, 60), plt(56, 10),
        hb(90, 60), plt(90, 12),
    )  # fmt: skip
    assert {f.rule_id for f in evaluate(results, enrolled)} == {"A-H5", "A-P3"}
    assert len({f.rule_id for f in evaluate(results, WOMAN)}) > 2
