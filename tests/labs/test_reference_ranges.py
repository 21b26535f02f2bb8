"""Default reference ranges, interpretation and B12/folate status (RULES §5.1, §5.2, §3.3, §3.4).
No database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patients.labs.analytes import AnalyteError, resolve, to_canonical
from patients.labs.reference_ranges import (
    B12_CUTOFF_SETS,
    BSH_2014,
    NG239_DEFAULT,
    ReferenceRange,
    b12_status,
    critical_limits,
    default_range,
    folate_status,
    interpret,
)


def adult_range(code: str, sex: str = "female", age: int | None = 40, pregnant: bool = False) -> ReferenceRange:
    found = default_range(code, sex, age, pregnant=pregnant)  # type: ignore[arg-type]
    assert found is not None
    return found


def judge(code: str, value: int | str, sex: str = "female", pregnant: bool = False) -> str:
    return interpret(Decimal(value), adult_range(code, sex, pregnant=pregnant), *critical_limits(code))


# --- Hemoglobin by sex and pregnancy (§5.2) -----------------------------------------------------


def test_a_woman_at_the_lower_limit_is_normal() -> None:
    assert judge("hemoglobin", 120, "female") == "normal"
    assert judge("hemoglobin", "119.9", "female") == "low"


def test_a_man_needs_130() -> None:
    assert judge("hemoglobin", 129, "male") == "low"
    assert judge("hemoglobin", 130, "male") == "normal"


def test_the_upper_limits_are_the_higher_lab_figures() -> None:
    assert judge("hemoglobin", 160, "female") == "normal"
    assert judge("hemoglobin", 161, "female") == "high"
    assert judge("hemoglobin", 180, "male") == "normal"
    assert judge("hemoglobin", 181, "male") == "high"


def test_pregnancy_lowers_the_limit_to_110() -> None:
    assert judge("hemoglobin", 110, "female", pregnant=True) == "normal"
    assert judge("hemoglobin", 109, "female", pregnant=True) == "low"
    assert judge("hemoglobin", 115, "female", pregnant=False) == "low"
    # Whatever sex is recorded, a pregnancy uses the pregnancy limit.
    assert judge("hemoglobin", 115, "unknown", pregnant=True) == "normal"


@pytest.mark.parametrize("sex", ["other", "unknown"])
def test_without_a_recorded_sex_the_male_lower_limit_is_used(sex: str) -> None:
    # A missed failure-to-normalise alert (A-H4) costs more than an extra review.
    assert judge("hemoglobin", 125, sex) == "low"
    assert judge("hemoglobin", 130, sex) == "normal"
    assert judge("hemoglobin", 175, sex) == "normal"


def test_hemoglobin_below_70_is_critical() -> None:
    # RULES §3.3 A-H5: Hb < 70 g/L is CRITICAL; 70 itself is only low.
    assert judge("hemoglobin", 69, "male") == "critically_low"
    assert judge("hemoglobin", 70, "male") == "low"


def test_a_hemoglobin_in_g_per_decilitre_is_judged_after_conversion() -> None:
    grams_per_litre = to_canonical(resolve("718-7"), "11.9", "g/dL")
    assert interpret(grams_per_litre, adult_range("718-7", "female")) == "low"


# --- Other analytes at their exact limits -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "below", "low", "high", "above"),
    [
        ("platelets", "149", "150", "400", "401"),  # §5.2
        ("mcv", "79.9", "80", "100", "100.1"),  # §5.2; A-H6 default ULN 100 fL
        ("reticulocytes_pct", "0.19", "0.2", "2.0", "2.01"),
        ("reticulocytes_abs", "19", "20", "110", "111"),
        ("ldh", "121", "122", "222", "223"),  # Mayo, LOINC 14804-9
        ("haptoglobin", "0.29", "0.3", "2.0", "2.1"),
        ("b12_active", "24", "25", "165", "166"),
        ("homocysteine", None, "0", "15", "15.1"),
        ("potassium", "3.4", "3.5", "5.0", "5.1"),
    ],
)
def test_a_value_at_either_limit_is_normal(code: str, below: str | None, low: str, high: str, above: str) -> None:
    reference = adult_range(code)
    if below is not None:
        assert interpret(Decimal(below), reference) == "low"
    assert interpret(Decimal(low), reference) == "normal"
    assert interpret(Decimal(high), reference) == "normal"
    assert interpret(Decimal(above), reference) == "high"


def test_one_sided_limits() -> None:
    # §8 Q4 fallback ULN 400 nmol/L; §5.2 folate >= 5.9 ug/L, ADAMTS13 >= 70 %.
    assert interpret(400, adult_range("mma")) == "normal"
    assert interpret(401, adult_range("mma")) == "high"
    assert interpret(0, adult_range("mma")) == "normal"
    assert interpret(Decimal("5.9"), adult_range("folate")) == "normal"
    assert interpret(Decimal("5.8"), adult_range("folate")) == "low"
    assert interpret(1000, adult_range("folate")) == "normal"
    assert interpret(70, adult_range("adamts13_activity")) == "normal"
    assert interpret(69, adult_range("adamts13_activity")) == "low"
    assert interpret(150, adult_range("adamts13_activity")) == "normal"


def test_platelets_below_20_are_critical() -> None:
    # RULES §3.4 A-P3: platelets < 20 x10^9/L is CRITICAL; 20 itself is only low.
    assert judge("platelets", 19) == "critically_low"
    assert judge("platelets", 20) == "low"


def test_only_rules_with_a_number_give_critical_limits() -> None:
    assert critical_limits("hemoglobin") == (Decimal(70), None)
    assert critical_limits("777-3") == (Decimal(20), None)
    assert critical_limits("ldh") == (None, None)
    assert critical_limits("potassium") == (None, None)


def test_a_caller_may_pass_a_critical_high() -> None:
    reference = ReferenceRange(Decimal("3.5"), Decimal("5.0"), "lab")
    assert interpret(Decimal("6.6"), reference, critical_high=Decimal("6.5")) == "critically_high"
    assert interpret(Decimal("6.5"), reference, critical_high=Decimal("6.5")) == "high"


def test_the_lab_range_overrides_the_default() -> None:
    # RULES §3.2 / §5.2: the reporting lab's range wins; the caller passes it.
    lab = ReferenceRange(Decimal(115), Decimal(165), "Riverside lab")
    assert interpret(118, adult_range("hemoglobin", "female")) == "low"
    assert interpret(118, lab) == "normal"


def test_it_accepts_ints_and_floats() -> None:
    assert interpret(150, adult_range("platelets")) == "normal"
    assert interpret(149.9, adult_range("platelets")) == "low"


def test_it_refuses_a_value_that_is_not_finite() -> None:
    with pytest.raises(AnalyteError) as error:
        interpret(float("nan"), adult_range("platelets"))
    assert error.value.field == "value"


def test_a_range_cannot_be_upside_down() -> None:
    with pytest.raises(ValueError):
        ReferenceRange(Decimal(5), Decimal(1), "typo")


# --- Which default exists, by analyte and age ---------------------------------------------------


@pytest.mark.parametrize("code", ["hematocrit", "b12_total", "bilirubin_indirect", "creatinine", "inr", "ferritin",
                                  "esr", "schistocytes"])
def test_there_is_no_default_where_rules_gives_none(code: str) -> None:
    assert default_range(code, "female", 40) is None


def test_ldh_has_a_default_from_18() -> None:
    # §5.2: Mayo 122-222 U/L is for >= 18 y.
    assert default_range("ldh", "male", 17) is None
    assert default_range("14804-9", "male", 18) == default_range("2532-0", "male", 18)
    assert adult_range("ldh", age=18).high == Decimal(222)


def test_children_get_no_default() -> None:
    # RULES scope: adults 16 and over.
    assert default_range("platelets", "female", 15) is None
    assert default_range("platelets", "female", 16) is not None


def test_an_unknown_age_is_read_as_adult() -> None:
    assert adult_range("ldh", age=None).low == Decimal(122)


def test_it_resolves_the_analyte_by_loinc() -> None:
    assert adult_range("26515-7") == adult_range("platelets")


def test_it_refuses_an_unknown_sex_or_age() -> None:
    with pytest.raises(AnalyteError) as error:
        default_range("hemoglobin", "f", 40)  # type: ignore[arg-type]
    assert error.value.field == "sex"
    with pytest.raises(AnalyteError) as error:
        default_range("hemoglobin", "female", -1)
    assert error.value.field == "age"
    with pytest.raises(AnalyteError) as error:
        default_range("vitamin_d", "female", 40)
    assert error.value.field == "analyte"


@pytest.mark.parametrize("code", ["hemoglobin", "platelets", "mcv", "reticulocytes_pct", "reticulocytes_abs", "ldh",
                                  "haptoglobin", "b12_active", "mma", "homocysteine", "folate", "adamts13_activity",
                                  "potassium"])
def test_every_default_cites_its_rule_and_evidence(code: str) -> None:
    for sex in ("female", "male", "other", "unknown"):
        source = adult_range(code, sex).source
        assert source.startswith("RULES §")
        assert any(tag in source for tag in ("[V]", "[S]", "[P]", "[U]", "[V;"))


# --- B12 status (§5.1) --------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "expected"), [(0, "deficient"), (179, "deficient"), ("179.9", "deficient"),
                                                 (180, "indeterminate"), (350, "indeterminate"),
                                                 ("350.1", "unlikely"), (351, "unlikely")])
def test_total_b12_by_ng239(total: int | str, expected: str) -> None:
    assert b12_status(total_ng_per_l=Decimal(total)) == expected


@pytest.mark.parametrize(("active", "expected"), [(24, "deficient"), (25, "indeterminate"), (70, "indeterminate"),
                                                  (71, "unlikely")])
def test_active_b12_by_ng239(active: int, expected: str) -> None:
    assert b12_status(active_pmol_per_l=active) == expected


def test_with_both_results_the_more_concerning_wins() -> None:
    assert b12_status(total_ng_per_l=400, active_pmol_per_l=20) == "deficient"
    assert b12_status(total_ng_per_l=170, active_pmol_per_l=80) == "deficient"
    assert b12_status(total_ng_per_l=400, active_pmol_per_l=50) == "indeterminate"
    assert b12_status(total_ng_per_l=400, active_pmol_per_l=80) == "unlikely"


def test_a_b12_in_pmol_per_litre_is_judged_in_ng_per_litre() -> None:
    # RULES §8 Q6: 133 pmol/L is the 180 ng/L threshold (~180.2 ng/L), so it is indeterminate.
    b12 = resolve("14685-2")
    assert b12_status(total_ng_per_l=to_canonical(b12, 133, "pmol/L")) == "indeterminate"
    assert b12_status(total_ng_per_l=to_canonical(b12, 132, "pmol/L")) == "deficient"


def test_bsh_2014_has_one_cut_off_at_200() -> None:
    assert b12_status(total_ng_per_l=199, cutoffs=BSH_2014) == "deficient"
    assert b12_status(total_ng_per_l=200, cutoffs=BSH_2014) == "unlikely"
    assert b12_status(total_ng_per_l=199) == "indeterminate"  # the NG239 default reads it differently


def test_the_alternative_sets_are_data() -> None:
    assert set(B12_CUTOFF_SETS) == {"NG239", "BSH-2014", "AFP-2017"}
    assert B12_CUTOFF_SETS["NG239"] is NG239_DEFAULT
    afp = B12_CUTOFF_SETS["AFP-2017"]
    assert b12_status(total_ng_per_l=400, cutoffs=afp) == "indeterminate"
    assert b12_status(total_ng_per_l=401, cutoffs=afp) == "unlikely"


def test_a_set_without_active_cut_offs_refuses_an_active_result() -> None:
    with pytest.raises(AnalyteError) as error:
        b12_status(active_pmol_per_l=20, cutoffs=BSH_2014)
    assert error.value.field == "cutoffs"


def test_b12_status_needs_a_result() -> None:
    with pytest.raises(AnalyteError) as error:
        b12_status()
    assert error.value.field == "value"


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_b12_status_refuses_impossible_values(value: float) -> None:
    with pytest.raises(AnalyteError) as error:
        b12_status(total_ng_per_l=value)
    assert error.value.field == "value"


# --- Folate status (§5.2, ARUP) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("folate", "expected"),
    [("3.9", "deficient"), ("3.95", "indeterminate"), ("4.0", "indeterminate"), ("5.8", "indeterminate"),
     ("5.9", "normal")],
)
def test_folate_status(folate: str, expected: str) -> None:
    assert folate_status(Decimal(folate)) == expected
