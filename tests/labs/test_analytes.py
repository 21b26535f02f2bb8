"""The analyte catalogue and exact unit conversions (RULES first section, §5.3, §7.1). No database."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

import pytest

from patients.labs.analytes import (
    CATALOGUE,
    AnalyteError,
    format_value,
    normalize_unit,
    resolve,
    to_canonical,
    to_presence,
)

# RULES first section, "Analyte codes and canonical units": code -> (preferred LOINC, canonical unit).
RULES_TABLE = {
    "hemoglobin": ("718-7", "g/L"),
    "hematocrit": ("4544-3", "L/L"),
    "platelets": ("777-3", "10^9/L"),
    "mcv": ("787-2", "fL"),
    "b12_total": ("2132-9", "ng/L"),
    "b12_active": ("72160-5", "pmol/L"),
    "mma": ("13964-2", "nmol/L"),
    "homocysteine": ("13965-9", "umol/L"),
    "ldh": ("2532-0", "U/L"),
    "reticulocytes_pct": ("17849-1", "%"),
    "reticulocytes_abs": ("14196-0", "10^9/L"),
    "haptoglobin": ("4542-7", "g/L"),
    "bilirubin_indirect": ("1971-1", "umol/L"),
    "folate": ("2284-8", "ug/L"),
    "adamts13_activity": ("53622-7", "%"),
    "esr": ("4537-7", "mm/h"),
    "schistocytes": ("800-3", "present/absent"),
    "potassium": ("2823-3", "mmol/L"),
    "creatinine": ("2160-0", "umol/L"),
    "inr": ("6301-6", "ratio"),
    "ferritin": ("2276-4", "ug/L"),
}

# RULES §7.1, "Alternates / notes" column (different tests such as RBC folate excluded).
ALTERNATE_LOINC = {
    "26515-7": "platelets",
    "30428-7": "mcv",
    "14685-2": "b12_total",
    "14804-9": "ldh",
    "4679-7": "reticulocytes_pct",
    "31112-6": "reticulocytes_pct",
    "30341-2": "esr",
    "34714-6": "inr",
    "20570-8": "hematocrit",
    "60474-4": "reticulocytes_abs",
}


def canonical(code: str, value: str | int | float | Decimal, unit: str) -> Decimal:
    return to_canonical(resolve(code), value, unit)


# --- The catalogue ------------------------------------------------------------------------------


def test_it_holds_exactly_the_rules_table() -> None:
    assert {a.code: (a.loinc, a.canonical_unit) for a in CATALOGUE} == RULES_TABLE


@pytest.mark.parametrize("code", sorted(RULES_TABLE))
def test_it_resolves_by_code_and_preferred_loinc(code: str) -> None:
    loinc = RULES_TABLE[code][0]
    assert resolve(code).code == code
    assert resolve(code.upper()).code == code
    assert resolve(f"  {loinc} ").code == code


@pytest.mark.parametrize(("loinc", "code"), sorted(ALTERNATE_LOINC.items()))
def test_it_resolves_alternate_loinc(loinc: str, code: str) -> None:
    assert resolve(loinc).code == code


def test_it_lists_no_loinc_twice() -> None:
    codes = [loinc for analyte in CATALOGUE for loinc in analyte.loinc_codes]
    assert len(codes) == len(set(codes))


def test_it_refuses_an_unknown_analyte_listing_what_is_accepted() -> None:
    with pytest.raises(AnalyteError) as error:
        resolve("vitamin_d")
    assert error.value.field == "analyte"
    assert "vitamin_d" in error.value.message
    assert "hemoglobin (718-7)" in error.value.message
    assert "14685-2" in error.value.message


@pytest.mark.parametrize("loinc", ["20646-6", "15152-2", "40824-5"])
def test_it_refuses_look_alike_loinc_by_name(loinc: str) -> None:
    # RULES §7.1: homocystine (not homocysteine), RBC folate, ADAMTS13 antibody are different tests.
    with pytest.raises(AnalyteError) as error:
        resolve(loinc)
    assert error.value.field == "analyte"
    assert "RULES §7.1" in error.value.message


def test_an_analyte_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="analyte: "):
        resolve("")


# --- Exact conversions, one per row of the RULES table and §5.3 ------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected"),
    [
        ("hemoglobin", "120", "g/L", "120"),
        ("hemoglobin", "12", "g/dL", "120"),  # §5.3: 12 g/dL = 120 g/L
        ("hemoglobin", "12.5", "g/dL", "125"),
        ("hemoglobin", "1", "mmol/L", "16.11"),  # table: mmol/L x 16.11
        ("hemoglobin", "7.45", "mmol/L", "120.0195"),
        ("hematocrit", "0.45", "L/L", "0.45"),
        ("hematocrit", "45", "%", "0.45"),  # table: % / 100
        ("platelets", "150", "10^9/L", "150"),
        ("platelets", "150", "10^3/uL", "150"),  # §5.3: x10^9/L = x10^3/uL = K/uL
        ("platelets", "150", "K/uL", "150"),
        ("platelets", "150000", "/uL", "150"),  # §5.3: 150 x10^9/L = 150,000/uL
        ("mcv", "95", "fL", "95"),
        ("b12_total", "180", "ng/L", "180"),
        ("b12_total", "180", "pg/mL", "180"),  # §5.3: 1 pg/mL = 1 ng/L
        ("b12_total", "73.8", "pmol/L", "100"),  # table: pmol/L / 0.738
        ("b12_active", "50", "pmol/L", "50"),
        ("mma", "271", "nmol/L", "271"),
        ("mma", "0.4", "umol/L", "400"),  # §5.3: nmol/L = umol/L x 1000
        ("mma", "0.40", "nmol/mL", "400"),  # §5.3: nmol/mL = umol/L (Mayo)
        ("homocysteine", "12", "umol/L", "12"),
        ("ldh", "222", "U/L", "222"),
        ("ldh", "222", "IU/L", "222"),  # §5.3: U/L = IU/L
        ("ldh", "3.7", "ukat/L", "222"),  # §5.3: ukat/L x 60
        ("reticulocytes_pct", "1.5", "%", "1.5"),
        ("reticulocytes_abs", "50", "10^9/L", "50"),
        ("reticulocytes_abs", "50", "10^3/uL", "50"),
        ("haptoglobin", "1.5", "g/L", "1.5"),
        ("haptoglobin", "150", "mg/dL", "1.5"),  # §5.3: mg/dL = g/L x 100
        ("bilirubin_indirect", "34", "umol/L", "34"),
        ("bilirubin_indirect", "2.0", "mg/dL", "34.2"),  # §5.3: PLASMIC 2.0 mg/dL = 34.2 umol/L
        ("folate", "5.9", "ug/L", "5.9"),
        ("folate", "5.9", "ng/mL", "5.9"),
        ("folate", "13.3694", "nmol/L", "5.9"),  # §5.3: nmol/L = ng/mL x 2.266
        ("adamts13_activity", "65", "%", "65"),
        ("esr", "20", "mm/h", "20"),
        ("potassium", "4.1", "mmol/L", "4.1"),
        ("creatinine", "176.8", "umol/L", "176.8"),
        ("creatinine", "2.0", "mg/dL", "176.8"),  # §5.3: 2.0 mg/dL = 176.8 umol/L (not 118)
        ("inr", "1.2", "ratio", "1.2"),
        ("inr", "1.2", "", "1.2"),
        ("ferritin", "30", "ug/L", "30"),
        ("ferritin", "30", "ng/mL", "30"),
    ],
)
def test_it_converts_exactly(code: str, value: str, unit: str, expected: str) -> None:
    result = canonical(code, value, unit)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)


def test_it_converts_b12_pmol_per_litre_by_dividing_by_0_738() -> None:
    # RULES §5.1 and §8 Q6: 180 ng/L = 133 pmol/L, so 133 pmol/L is ~180.2 ng/L.
    result = canonical("b12_total", 133, "pmol/L")
    assert result.quantize(Decimal("0.1")) == Decimal("180.2")
    with localcontext() as context:
        context.prec = 28
        assert result == Decimal(133) / Decimal("0.738")
    # §5.3 quotes 350 ng/L = 258 pmol/L and 200 ng/L = 148 pmol/L, rounded to whole pmol/L: back
    # in ng/L they land within 1 ng/L of the threshold.
    assert abs(canonical("b12_total", 258, "pmol/L") - 350) < 1
    assert abs(canonical("b12_total", 148, "pmol/L") - 200) < 1


def test_it_reads_floats_by_their_decimal_spelling() -> None:
    assert canonical("hemoglobin", 12.1, "g/dL") == Decimal("121")
    assert canonical("creatinine", 2.0, "mg/dL") == Decimal("176.8")
    assert canonical("platelets", 150, "K/uL") == 150


# --- Unit spellings -----------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["10^9/L", "x10^9/L", "X10^9/L", "×10^9/L", "10*9/L", "10**9/L", "10E9/L",
                                  "10⁹/L", "× 10⁹ / L", "10^9/l"])
def test_it_accepts_spellings_of_ten_to_the_nine_per_litre(unit: str) -> None:
    assert canonical("platelets", 150, unit) == 150


@pytest.mark.parametrize("unit", ["10^3/uL", "10^3/µL", "10^3/μL", "x10^3/uL", "10*3/uL", "K/uL", "k/µl",
                                  "10³/µL"])
def test_it_accepts_spellings_of_thousands_per_microlitre(unit: str) -> None:
    assert canonical("platelets", 150, unit) == 150


@pytest.mark.parametrize(
    ("code", "unit"),
    [("mma", "µmol/L"), ("mma", "UMOL/L"), ("homocysteine", "μmol/L"), ("ldh", "[IU]/L"), ("ldh", "µkat/L"),
     ("ferritin", "mcg/L"), ("ferritin", "µg/L"), ("hemoglobin", "G/DL"), ("inr", "{ratio}"), ("esr", "mm/hr")],
)
def test_it_ignores_case_micro_sign_and_ucum_spelling(code: str, unit: str) -> None:
    canonical(code, 1, unit)


def test_it_does_not_guess_a_power_of_ten_without_a_separator() -> None:
    assert normalize_unit("109/L") == "109/l"
    with pytest.raises(AnalyteError) as error:
        canonical("platelets", 150, "109/L")
    assert error.value.field == "unit"


# --- Refusals -----------------------------------------------------------------------------------


def test_it_refuses_an_unknown_unit_naming_the_accepted_ones() -> None:
    with pytest.raises(AnalyteError) as error:
        canonical("hemoglobin", 12, "mg/L")
    assert error.value.field == "unit"
    assert "'mg/L'" in error.value.message
    assert "g/L, g/dL, mmol/L" in error.value.message


def test_it_refuses_a_unit_of_another_analyte() -> None:
    # mg/dL is accepted for creatinine but not for hemoglobin: no cross-analyte guessing.
    with pytest.raises(AnalyteError) as error:
        canonical("hemoglobin", 12, "mg/dL")
    assert error.value.field == "unit"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("Infinity"),
                                   "nan", "inf"])
def test_it_refuses_values_that_are_not_finite(value: float | Decimal | str) -> None:
    with pytest.raises(AnalyteError) as error:
        canonical("hemoglobin", value, "g/L")
    assert error.value.field == "value"


@pytest.mark.parametrize("value", ["abc", "", "<5", True, None, [12]])
def test_it_refuses_values_that_are_not_numbers(value: object) -> None:
    with pytest.raises(AnalyteError) as error:
        canonical("hemoglobin", value, "g/L")  # type: ignore[arg-type]
    assert error.value.field == "value"


@pytest.mark.parametrize("code", sorted(set(RULES_TABLE) - {"schistocytes"}))
def test_it_refuses_any_negative_value(code: str) -> None:
    # RULES first section: any negative value is refused.
    analyte = resolve(code)
    with pytest.raises(AnalyteError) as error:
        to_canonical(analyte, "-0.1", analyte.canonical_unit)
    assert error.value.field == "value"
    assert code in error.value.message


@pytest.mark.parametrize("code", sorted(set(RULES_TABLE) - {"schistocytes"}))
def test_it_accepts_zero_where_possible_and_the_plausible_maximum(code: str) -> None:
    analyte = resolve(code)
    assert analyte.plausible_max is not None
    if not analyte.positive:
        assert to_canonical(analyte, 0, analyte.canonical_unit) == 0
    assert to_canonical(analyte, analyte.plausible_max, analyte.canonical_unit) == analyte.plausible_max


@pytest.mark.parametrize(
    ("code", "unit"), [("hemoglobin", "g/L"), ("hemoglobin", "g/dL"), ("hematocrit", "%"), ("mcv", "fL")]
)
def test_it_refuses_zero_red_cell_measures_but_not_a_very_low_value(code: str, unit: str) -> None:
    # Issue 12: hemoglobin 0 g/L was accepted. Zero is outside the physically possible range (RULES first
    # section) for a measure of the red cells in a blood sample; the lowest real values still pass.
    with pytest.raises(AnalyteError) as error:
        canonical(code, "0.0", unit)
    assert error.value.field == "value"
    assert code in error.value.message and "zero" in error.value.message
    assert canonical(code, "0.1", unit) > 0


def test_it_refuses_hemoglobin_above_300_g_per_litre() -> None:
    # RULES first section: hemoglobin above 300 g/L is refused, naming analyte, value and unit.
    assert canonical("hemoglobin", 300, "g/L") == 300
    with pytest.raises(AnalyteError) as error:
        canonical("hemoglobin", "300.1", "g/L")
    assert error.value.field == "value"
    assert "hemoglobin" in error.value.message
    assert "300.1 g/L" in error.value.message


def test_it_catches_a_unit_slip_and_says_what_it_converted_to() -> None:
    # A g/L value sent as g/dL: 120 g/dL would be 1200 g/L.
    with pytest.raises(AnalyteError) as error:
        canonical("hemoglobin", 120, "g/dL")
    assert error.value.field == "value"
    assert "hemoglobin value 120 g/dL (1200 g/L)" in error.value.message
    assert "300 g/L" in error.value.message


def test_it_refuses_platelets_above_5000() -> None:
    # RULES first section: platelets above 5000 x10^9/L are refused.
    assert canonical("platelets", 5000, "10^9/L") == 5000
    with pytest.raises(AnalyteError) as error:
        canonical("platelets", 5_000_001, "/uL")
    assert error.value.field == "value"
    assert "platelets value 5000001 /uL" in error.value.message


def test_it_refuses_a_hematocrit_percentage_sent_as_a_fraction() -> None:
    with pytest.raises(AnalyteError) as error:
        canonical("hematocrit", 45, "L/L")
    assert error.value.field == "value"


def test_it_refuses_a_reticulocyte_percentage_above_100() -> None:
    with pytest.raises(AnalyteError):
        canonical("reticulocytes_pct", "100.5", "%")


def test_it_refuses_creatinine_in_umol_per_litre_sent_as_mg_per_decilitre() -> None:
    with pytest.raises(AnalyteError) as error:
        canonical("creatinine", "176.8", "mg/dL")
    assert error.value.field == "value"


# --- Schistocytes: qualitative ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("present", "present"), ("Present", "present"), ("seen", "present"), ("POSITIVE", "present"),
     ("absent", "absent"), ("None seen", "absent"), ("not  detected", "absent"), ("negative", "absent")],
)
def test_it_reads_schistocytes_as_present_or_absent(value: str, expected: str) -> None:
    assert to_presence(resolve("800-3"), value) == expected


def test_it_refuses_a_number_for_schistocytes() -> None:
    with pytest.raises(AnalyteError) as error:
        to_canonical(resolve("schistocytes"), 1, "")
    assert error.value.field == "value"


def test_it_refuses_unclear_schistocyte_wording() -> None:
    with pytest.raises(AnalyteError) as error:
        to_presence(resolve("schistocytes"), "maybe")
    assert error.value.field == "value"
    assert "present" in error.value.message


def test_it_refuses_present_absent_for_a_number() -> None:
    with pytest.raises(AnalyteError):
        to_presence(resolve("hemoglobin"), "present")


# --- Numbers for people (format_value) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (100, "100"),
        (Decimal("100.000000"), "100"),
        ("100.000000", "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.35"), "0.35"),
        (0.35, "0.35"),
        (Decimal("221.4"), "221.4"),
        (Decimal("221.400000"), "221.4"),
        (Decimal("0.000000"), "0"),
        (None, ""),
    ],
)
def test_it_formats_a_value_without_exponent_or_trailing_zeros(value: Any, shown: str) -> None:
    assert format_value(value) == shown


@pytest.mark.parametrize(
    ("value", "analyte", "shown"),
    [
        (Decimal("100.000000"), "hemoglobin", "100"),
        (Decimal("1E+2"), "platelets", "100"),
        (Decimal("221.400000"), "ldh", "221.4"),
        (Decimal("0.350000"), "haptoglobin", "0.35"),
        (Decimal("0.355000"), "haptoglobin", "0.355"),  # 35.5 mg/dL: not rounded away
        (Decimal("135.501355"), "b12_total", "135.5"),  # 100 pmol/L: a conversion tail is rounded
        (Decimal("5.869373"), "folate", "5.87"),
        (Decimal("1.150000"), "inr", "1.15"),
        (Decimal("12.000000"), "esr", "12"),
    ],
)
def test_it_shows_as_many_decimals_as_the_analyte_needs(value: Decimal, analyte: str, shown: str) -> None:
    assert format_value(value, analyte) == shown


def test_it_appends_the_canonical_unit_and_never_raises_on_an_unknown_code() -> None:
    assert format_value(Decimal("100.000000"), "hemoglobin", unit=True) == "100 g/L"
    assert format_value(Decimal("0.350000"), "4542-7", unit=True) == "0.35 g/L"  # by LOINC
    assert format_value(Decimal("1.500000"), "not-an-analyte") == "1.5"
