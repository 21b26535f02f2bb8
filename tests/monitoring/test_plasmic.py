"""PLASMIC (RULES §6): each component at its limit, incomplete scores, bands, applicability, the
experimental variant."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monitoring.plasmic import EXPERIMENTAL_LABEL, Measured, PlasmicInputs, band_of, score


def m(value: str) -> Measured:
    return Measured(Decimal(value))


# A typical TTP presentation: every component scores (7/7).
TTP = PlasmicInputs(
    platelets=m("12"),
    reticulocytes_pct=m("6.0"),
    haptoglobin_undetectable=True,
    indirect_bilirubin=m("40"),
    mcv=m("85"),
    inr=m("1.1"),
    creatinine=m("90"),
    active_cancer=False,
    transplant=False,
    schistocytes_present=True,
)


def points(inputs: PlasmicInputs, letter: str, experimental: bool = False) -> int | None:
    return next(c.points for c in score(inputs, experimental=experimental).components if c.letter == letter)


def test_a_typical_ttp_presentation_scores_seven_high() -> None:
    result = score(TTP)
    assert (result.score, result.complete, result.band, result.applicable) == (7, True, "high", True)


@pytest.mark.parametrize(
    ("field", "value", "letter", "expected"),
    [
        ("platelets", "29.9", "P", 1),
        ("platelets", "30", "P", 0),  # "< 30": exactly 30 earns nothing
        ("mcv", "89.9", "M", 1),
        ("mcv", "90", "M", 0),  # "< 90 fL": megaloblastic MCV loses the point (§6.4)
        ("inr", "1.49", "I", 1),
        ("inr", "1.5", "I", 0),
        ("creatinine", "176.7", "C", 1),
        ("creatinine", "176.8", "C", 0),  # 2.0 mg/dL = 176.8 umol/L (§5.3), not 118
    ],
)
def test_each_lab_component_at_its_limit(field: str, value: str, letter: str, expected: int) -> None:
    inputs = PlasmicInputs(**{**TTP.__dict__, field: m(value)})
    assert points(inputs, letter) == expected


@pytest.mark.parametrize(
    ("retic", "hapto", "bili", "expected"),
    [
        ("2.6", False, "20", 1),  # reticulocytes > 2.5 %
        ("2.5", False, "20", 0),  # exactly 2.5 % is not "> 2.5"
        ("1.0", True, "20", 1),  # haptoglobin undetectable
        ("1.0", False, "34.3", 1),  # indirect bilirubin > 2.0 mg/dL = 34.2 umol/L
        ("1.0", False, "34.2", 0),
    ],
)
def test_hemolysis_is_any_of_three_signs(retic: str, hapto: bool, bili: str, expected: int) -> None:
    inputs = PlasmicInputs(
        **{
            **TTP.__dict__,
            "reticulocytes_pct": m(retic),
            "haptoglobin_undetectable": hapto,
            "indirect_bilirubin": m(bili),
        }
    )
    assert points(inputs, "L") == expected


def test_cancer_and_transplant_score_only_when_recorded_absent() -> None:
    assert points(PlasmicInputs(**{**TTP.__dict__, "active_cancer": True}), "A") == 0
    assert points(PlasmicInputs(**{**TTP.__dict__, "transplant": True}), "S") == 0
    assert points(PlasmicInputs(**{**TTP.__dict__, "active_cancer": None}), "A") is None


def test_missing_inputs_give_an_incomplete_score_with_its_range_never_zero() -> None:
    inputs = PlasmicInputs(**{**TTP.__dict__, "inr": None, "active_cancer": None})
    result = score(inputs)
    assert (result.complete, result.score, result.min_score, result.max_score) == (False, None, 5, 7)
    assert result.band is None  # 5 is intermediate, 7 is high: the band is not known
    assert set(result.missing) == {"inr", "no_active_cancer"}


def test_an_incomplete_score_still_has_a_band_when_both_ends_agree() -> None:
    low = PlasmicInputs(platelets=m("80"), mcv=m("110"), inr=m("1.8"), creatinine=m("200"))
    result = score(low)  # known: 0 points; hemolysis, cancer, transplant unknown: 0..3
    assert (result.min_score, result.max_score, result.band) == (0, 3, "low")


def test_hemolysis_is_unknown_until_a_sign_is_positive_or_all_are_negative() -> None:
    partial = PlasmicInputs(**{**TTP.__dict__, "reticulocytes_pct": m("1.0"), "haptoglobin_undetectable": None})
    partial = PlasmicInputs(**{**partial.__dict__, "indirect_bilirubin": m("10")})
    assert points(partial, "L") is None
    positive = PlasmicInputs(**{**partial.__dict__, "indirect_bilirubin": m("50")})
    assert points(positive, "L") == 1


@pytest.mark.parametrize(("value", "band"), [(0, "low"), (4, "low"), (5, "intermediate"), (6, "high"), (7, "high")])
def test_bands_are_the_2017_bands(value: int, band: str) -> None:
    assert band_of(value) == band


def test_it_says_when_the_score_does_not_apply() -> None:
    no_schistocytes = score(PlasmicInputs(**{**TTP.__dict__, "schistocytes_present": False}))
    assert no_schistocytes.applicable is False and "schistocytes" in no_schistocytes.applicability
    platelets_150 = score(PlasmicInputs(**{**TTP.__dict__, "platelets": m("150")}))
    assert platelets_150.applicable is False and "150" in platelets_150.applicability
    unknown = score(PlasmicInputs(**{**TTP.__dict__, "schistocytes_present": None}))
    assert unknown.applicable is None


def test_the_experimental_variant_counts_only_reticulocytosis() -> None:
    pseudo_tma = PlasmicInputs(**{**TTP.__dict__, "reticulocytes_pct": m("0.5")})  # retics low, hapto absent
    assert points(pseudo_tma, "L") == 1
    assert points(pseudo_tma, "L", experimental=True) == 0
    assert "not validated" in EXPERIMENTAL_LABEL
