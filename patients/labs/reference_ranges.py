"""Default adult reference ranges, critical limits, and the B12 and folate status bands.

Pure: imports nothing from Django and touches no database. Values are in each analyte's canonical
unit (patients/labs/analytes.py) and are `decimal.Decimal`; `interpret` and the status functions accept
Decimal, int or float. Every number cites RULES: §5.2 (reference ranges), §5.1 (B12 status), §3.3
and §3.4 (critical limits), §8 (where sources disagree); the evidence tag ([V], [S], [P], [U], §0.1)
travels in each range's `source` so a screen can show how firm a default is.

RULES §3.2 and §5.2: the reporting lab's own range always wins. These defaults are only for a
result that arrives without one; the caller decides which range to pass to `interpret`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from patients.labs.analytes import AnalyteError, resolve

Sex = Literal["female", "male", "other", "unknown"]
SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")

Interpretation = Literal["low", "normal", "high", "critically_low", "critically_high"]
B12Status = Literal["deficient", "indeterminate", "unlikely"]
FolateStatus = Literal["deficient", "indeterminate", "normal"]

Value = Decimal | int | float

# RULES scope: adult patients, 16 and over. Younger patients get no default range.
ADULT_FROM_AGE = 16


@dataclass(frozen=True)
class ReferenceRange:
    """`low` and `high` are inclusive limits (a value exactly at either is normal); None = no limit."""

    low: Decimal | None
    high: Decimal | None
    source: str

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"reference range low {self.low} is above high {self.high}")


def _range(low: int | str | None, high: int | str | None, source: str) -> ReferenceRange:
    return ReferenceRange(
        None if low is None else Decimal(low), None if high is None else Decimal(high), f"RULES {source}"
    )


# --- Hemoglobin (g/L), RULES §5.2 ------------------------------------------------------------
# §5.2 gives the WHO anaemia cut-offs as the LLN and "typical UK lab" upper limits of 150/160 g/L
# (female) and 170/180 g/L (male). The upper limit drives no rule (A-H2..A-H7 and S-3 use the LLN
# only), so the higher figure is taken: it avoids flagging healthy values as high.
HEMOGLOBIN_FEMALE = _range(120, 160, "§5.2: Hb female (non-pregnant) WHO LLN 120, lab range 120-150/160 g/L [V]")
HEMOGLOBIN_MALE = _range(130, 180, "§5.2: Hb male WHO LLN 130, lab range 130-170/180 g/L [V]")
# §5.2 gives only the pregnancy LLN (< 110 g/L is anaemia); the upper limit stays the female one.
HEMOGLOBIN_PREGNANT = _range(110, 160, "§5.2: Hb pregnant, anaemia < 110 g/L (WHO) [V]; ULN as female")
# Sex "other" or "unknown": the male LLN (130), the higher of the two. The LLN drives the
# failure-to-normalise alerts (A-H4 and A-H7 HIGH, S-3 CRITICAL); with the female LLN a man at 125 g/L
# would never be flagged, while the male LLN at worst asks for one needless review of a woman at
# 120-129 g/L. In decision support a missed alert costs more than an extra one. The ULN is the higher
# (180) for the reason above. A lab range, or recording the sex, replaces this.
HEMOGLOBIN_SEX_NOT_RECORDED = _range(
    130, 180, "§5.2: Hb, sex not recorded: male LLN 130 (missed alert costs more) and ULN 180 [V; choice P]"
)

# --- Ranges that do not depend on sex ------------------------------------------------------------
# --- The [P] fallback upper limits: settings --------------------------------------------------------
# RULES marks these two ULNs [P] (§0.1: "must be ... configurable"), so each is a setting with RULES' number as
# its default: settings.COBALT["MCV_FALLBACK_ULN"] / ["MMA_FALLBACK_ULN"] (COBALT_MCV_FALLBACK_ULN,
# COBALT_MMA_FALLBACK_ULN). This module stays free of Django: the patients app installs the source of the
# configured values (`use_fallback_ulns`, patients/apps.py), read at each lookup; without one the defaults apply.
FALLBACK_ULN_DEFAULTS: dict[str, Decimal] = {
    # RULES §3.3 A-H6: "Day 56 ± 7 MCV > ULN (default 100 fL)", "[P] threshold"; §5.2 lists 80-100 fL [V].
    "mcv": Decimal(100),
    # RULES §8 Q4: "Use the reporting lab's ULN; fall back to 400 nmol/L [P]" (Mayo <= 0.40 umol/L, §5.2).
    "mma": Decimal(400),
}

FallbackUlnSource = Callable[[], Mapping[str, Value | None]]
_fallback_uln_source: FallbackUlnSource | None = None


def use_fallback_ulns(source: FallbackUlnSource | None) -> None:
    """Install the source of the configured fallback ULNs ({"mcv": ..., "mma": ...}; a missing or None value
    keeps the default); None removes it."""
    global _fallback_uln_source
    _fallback_uln_source = source


def fallback_uln(analyte_code: str) -> Decimal:
    """The ULN of MCV or MMA for a result whose lab sent none: the setting, else RULES' default."""
    code = resolve(analyte_code).code
    configured = _fallback_uln_source() if _fallback_uln_source is not None else {}
    value = configured.get(code)
    return FALLBACK_ULN_DEFAULTS[code] if value is None else Decimal(str(value))


def fallback_uln_problem(analyte_code: str, value: object) -> str | None:
    """Why `value` cannot be the fallback ULN of MCV or MMA (the start-up check, monitoring/checks.py), or None:
    it must be a number above the default LLN (MCV 80 fL) or above 0 (MMA)."""
    code = resolve(analyte_code).code
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return f"{value!r} is not a number"
    low = _SEX_INDEPENDENT[code].low or Decimal(0)
    if not number.is_finite() or number <= low:
        return f"{value!r} is not a number above {low}"
    return None


_SEX_INDEPENDENT: dict[str, ReferenceRange] = {
    "platelets": _range(150, 400, "§5.2: platelets 150-400 x10^9/L (North Devon; Hoffbrand; RLBUHT; UHD) [V]"),
    # The ULN is the A-H6 [P] setting (FALLBACK_ULN_DEFAULTS; `default_range` applies it).
    "mcv": _range(80, 100, "§5.2: MCV 80-100 fL (RLBUHT; North Devon; UHD; Hoffbrand) [V]"),
    "reticulocytes_pct": _range("0.2", "2.0", "§5.2: reticulocytes 0.2-2.0 % (RLBUHT) [V]"),
    # §5.2 lists four labs (20-110, 25-82, 50-100, Lothian 25-85); RLBUHT's is taken because it is the
    # same lab as the 0.2-2.0 % default above, so the two reticulocyte defaults agree with each other.
    "reticulocytes_abs": _range(20, 110, "§5.2: reticulocytes 20-110 x10^9/L (RLBUHT) [V]"),
    "ldh": _range(122, 222, "§5.2: LDH >= 18 y 122-222 U/L (Mayo, LOINC 14804-9) [V]; method-dependent"),
    # §5.2 marks this range [U]: confirm before use (S-3 uses "haptoglobin low or undetectable").
    "haptoglobin": _range("0.3", "2.0", "§5.2: haptoglobin commonly ~0.3-2.0 g/L [U]"),
    "b12_active": _range(25, 165, "§5.2: active B12 25-165 pmol/L (NWL Pathology) [V]"),
    # §8 Q4 software stance: use the lab's ULN, fall back to 400 nmol/L [P] (the setting, FALLBACK_ULN_DEFAULTS).
    # The Danish age-related 460 nmol/L at >= 65 y (§5.2) is deliberately not applied: Q4 gives one fallback,
    # for all ages.
    "mma": _range(None, 400, "§8 Q4: MMA fallback ULN 400 nmol/L (Mayo <= 0.40 umol/L, §5.2) [P]"),
    "homocysteine": _range(0, 15, "§5.2: homocysteine 0-15 umol/L (ARUP since 2021) [V]"),
    # §5.2 (ARUP): >= 5.9 normal; 4.0-5.8 indeterminate and <= 3.9 deficient both read as "low" here;
    # folate_status() gives the three bands.
    "folate": _range("5.9", None, "§5.2: serum folate >= 5.9 ng/mL normal (ARUP) [V]"),
    "adamts13_activity": _range(70, None, "§5.2: ADAMTS13 activity >= 70 % (Mayo) [V]"),
    "potassium": _range("3.5", "5.0", "§5.2: potassium typically 3.5-5.0 mmol/L [U]"),
}
# No default, deliberately (RULES gives none, or says the lab range is the only one):
# hematocrit, bilirubin_indirect ("lab-specific"), creatinine, inr, ferritin, esr (S-8: no rules use it),
# schistocytes (qualitative), and b12_total (§5.2: lab ranges "vary widely"; use b12_status, §5.1).

# LDH: Mayo's 122-222 U/L is given for >= 18 y only (§5.2).
_MINIMUM_AGE: dict[str, int] = {"ldh": 18}

# --- Critical limits: only where RULES gives a number -----------------------------------------
HEMOGLOBIN_CRITICAL_LOW = Decimal(70)  # RULES §3.3 A-H5 [P]: any post-T0 Hb < 70 g/L is CRITICAL
PLATELETS_CRITICAL_LOW = Decimal(20)  # RULES §3.4 A-P3 [P]: any post-T0 platelets < 20 x10^9/L is CRITICAL

_CRITICAL_LIMITS: dict[str, tuple[Decimal | None, Decimal | None]] = {
    "hemoglobin": (HEMOGLOBIN_CRITICAL_LOW, None),
    "platelets": (PLATELETS_CRITICAL_LOW, None),
}


def _check_sex(sex: str) -> None:
    if sex not in SEXES:
        raise AnalyteError("sex", f"Unknown sex {sex!r}. Accepted: {', '.join(SEXES)}.")


def default_range(analyte_code: str, sex: Sex, age: int | None, pregnant: bool = False) -> ReferenceRange | None:
    """The RULES §5.2 default adult range for an analyte (code or LOINC), or None when there is none.

    `age` in whole years; None is read as an adult (the product's scope is 16 and over). `pregnant`
    applies the pregnancy Hb limit whatever the recorded sex. Other analytes ignore it: §5.2 gives no
    pregnancy ranges for them.
    """
    analyte = resolve(analyte_code)
    _check_sex(sex)
    if age is not None and (isinstance(age, bool) or age < 0):
        raise AnalyteError("age", f"Age must be a whole number of years, 0 or more, not {age!r}.")
    if age is not None and age < max(ADULT_FROM_AGE, _MINIMUM_AGE.get(analyte.code, 0)):
        return None
    if analyte.code == "hemoglobin":
        if pregnant:
            return HEMOGLOBIN_PREGNANT
        return {"female": HEMOGLOBIN_FEMALE, "male": HEMOGLOBIN_MALE}.get(sex, HEMOGLOBIN_SEX_NOT_RECORDED)
    found = _SEX_INDEPENDENT.get(analyte.code)
    if found is not None and analyte.code in FALLBACK_ULN_DEFAULTS:
        high = fallback_uln(analyte.code)
        if high != found.high:
            return ReferenceRange(found.low, high, f"{found.source}; ULN {high} by site setting [P]")
    return found


def critical_limits(analyte_code: str) -> tuple[Decimal | None, Decimal | None]:
    """(critical_low, critical_high) for an analyte, from the CRITICAL alert rules; (None, None) if none."""
    return _CRITICAL_LIMITS.get(resolve(analyte_code).code, (None, None))


def _finite(value: Value, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise AnalyteError("value", f"{name} must be a number, not {value!r}.")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise AnalyteError("value", f"{name} {value} is not a finite number.")
    return number


def normal_limits(
    analyte_code: str,
    ref_low: Value | None,
    ref_high: Value | None,
    sex: Sex,
    age: int | None,
    pregnant: bool = False,
) -> tuple[Decimal | None, Decimal | None]:
    """(LLN, ULN) of one result, side by side: the reporting lab's own limit when it sent one, else the
    §5.2 default (§3.2 "Lab limits"). The one lookup every rule uses (monitoring/rules/base.py)."""
    default = default_range(analyte_code, sex, age, pregnant)
    low = Decimal(str(ref_low)) if ref_low is not None else (default.low if default else None)
    high = Decimal(str(ref_high)) if ref_high is not None else (default.high if default else None)
    return low, high


def interpret(
    value_canonical: Value,
    reference_range: ReferenceRange,
    critical_low: Value | None = None,
    critical_high: Value | None = None,
) -> Interpretation:
    """Where a canonical value falls: below `critical_low` (strictly), below the range, in it
    (limits inclusive), above it, above `critical_high` (strictly).

    Critical limits come from `critical_limits()`; pass None where RULES gives none. The range is
    the lab's own when the result carries one, otherwise `default_range()` (RULES §3.2).
    """
    value = _finite(value_canonical, "value")
    if critical_low is not None and value < _finite(critical_low, "critical_low"):
        return "critically_low"
    if critical_high is not None and value > _finite(critical_high, "critical_high"):
        return "critically_high"
    if reference_range.low is not None and value < reference_range.low:
        return "low"
    if reference_range.high is not None and value > reference_range.high:
        return "high"
    return "normal"


# --- B12 status, RULES §5.1 --------------------------------------------------------------------
@dataclass(frozen=True)
class B12Cutoffs:
    """One set of B12 status cut-offs, as data (RULES §5.1 "store them as configurable alternatives").

    For each test: below `*_deficient_below` is "deficient"; from there up to and including
    `*_indeterminate_up_to` is "indeterminate"; above it "unlikely". An indeterminate limit of None means
    the set has no indeterminate band; active-B12 limits of None mean the set says nothing on active B12.
    Total B12 in ng/L (= pg/mL), active B12 in pmol/L.
    """

    name: str
    source: str
    total_deficient_below: Decimal
    total_indeterminate_up_to: Decimal | None
    active_deficient_below: Decimal | None = None
    active_indeterminate_up_to: Decimal | None = None


# RULES §5.1: total < 180 / 180-350 / > 350 ng/L [S]; active < 25 / 25-70 / > 70 pmol/L [V-copy].
# §8 Q5 and Q7: the default, unless the lab has its own cut-offs configured.
NG239_DEFAULT = B12Cutoffs(
    name="NG239",
    source="RULES §5.1: NICE NG239 thresholds (total [S], active via NWL Pathology [V-copy])",
    total_deficient_below=Decimal(180),
    total_indeterminate_up_to=Decimal(350),
    active_deficient_below=Decimal(25),
    active_indeterminate_up_to=Decimal(70),
)
# RULES §5.1 "Older/alternative cut-offs": BSH-2014 200 ng/L (148 pmol/L) [V-copy], CKS 2020 the same.
# One cut-off, no indeterminate band, nothing on active B12. BSH adds that with strong clinical
# suspicion a value above it should still be investigated (MMA, homocysteine, holoTC).
BSH_2014 = B12Cutoffs(
    name="BSH-2014",
    source="RULES §5.1: BSH-2014 and CKS 2020, serum cobalamin < 200 ng/L [V-copy]; superseded by NG239 (§8 Q19)",
    total_deficient_below=Decimal(200),
    total_indeterminate_up_to=None,
)
# RULES §8 Q5: AFP-2017 summary, < 200 deficient, 200-400 borderline.
AFP_2017 = B12Cutoffs(
    name="AFP-2017",
    source="RULES §8 Q5: AFP-2017 summary, < 200 ng/L deficient, 200-400 borderline",
    total_deficient_below=Decimal(200),
    total_indeterminate_up_to=Decimal(400),
)
B12_CUTOFF_SETS: dict[str, B12Cutoffs] = {cutoffs.name: cutoffs for cutoffs in (NG239_DEFAULT, BSH_2014, AFP_2017)}

_B12_SEVERITY: dict[B12Status, int] = {"unlikely": 0, "indeterminate": 1, "deficient": 2}


def _band(value: Decimal, deficient_below: Decimal, indeterminate_up_to: Decimal | None) -> B12Status:
    if value < deficient_below:
        return "deficient"
    if indeterminate_up_to is not None and value <= indeterminate_up_to:
        return "indeterminate"
    return "unlikely"


def b12_status(
    total_ng_per_l: Value | None = None,
    active_pmol_per_l: Value | None = None,
    cutoffs: B12Cutoffs = NG239_DEFAULT,
) -> B12Status:
    """B12 status from total B12 (ng/L) and/or active B12 (pmol/L), by the given cut-off set (§5.1).

    With both results, the more concerning one wins: RULES gives no rule for discordant results,
    and §5.1 warns that a normal B12 does not exclude deficiency (BSH-2014), so a low active B12 is
    not overruled by a normal total (nor the reverse).
    """
    if total_ng_per_l is None and active_pmol_per_l is None:
        raise AnalyteError("value", "b12_status needs a total or an active B12 result.")
    statuses: list[B12Status] = []
    if total_ng_per_l is not None:
        total = _nonnegative(total_ng_per_l, "total B12")
        statuses.append(_band(total, cutoffs.total_deficient_below, cutoffs.total_indeterminate_up_to))
    if active_pmol_per_l is not None:
        if cutoffs.active_deficient_below is None:
            raise AnalyteError("cutoffs", f"The {cutoffs.name} cut-offs say nothing on active B12.")
        active = _nonnegative(active_pmol_per_l, "active B12")
        statuses.append(_band(active, cutoffs.active_deficient_below, cutoffs.active_indeterminate_up_to))
    return max(statuses, key=_B12_SEVERITY.__getitem__)


# RULES §5.2 (ARUP) [V]: serum folate <= 3.9 ng/mL deficient; 4.0-5.8 indeterminate; >= 5.9 normal.
FOLATE_DEFICIENT_UP_TO = Decimal("3.9")
FOLATE_NORMAL_FROM = Decimal("5.9")


def folate_status(folate_ug_per_l: Value) -> FolateStatus:
    """Serum folate (ug/L = ng/mL) in the three ARUP bands of RULES §5.2.

    ARUP reports one decimal; a value between the bands (3.95, 5.85) goes to "indeterminate".
    """
    folate = _nonnegative(folate_ug_per_l, "folate")
    if folate <= FOLATE_DEFICIENT_UP_TO:
        return "deficient"
    if folate >= FOLATE_NORMAL_FROM:
        return "normal"
    return "indeterminate"


def _nonnegative(value: Value, name: str) -> Decimal:
    number = _finite(value, name)
    if number < 0:
        raise AnalyteError("value", f"{name} {value} is negative, which is not physically possible.")
    return number
