"""The analyte catalogue: codes, LOINC, canonical units and exact unit conversions.

Pure: imports nothing from Django and touches no database. Every analyte, LOINC code and unit here
comes from RULES, first section ("Analyte codes and canonical units"), §7.1 (LOINC, preferred and
alternates) and §5.3 (unit conversions); the citations are next to the data.

Numbers: `to_canonical` returns a `decimal.Decimal`. Each conversion factor is an exact
`fractions.Fraction`, so a result is exact whenever it has a finite decimal expansion (g/dL x 10,
mg/dL x 17.1, ...); the two divisions that do not terminate (B12 pmol/L / 0.738, folate nmol/L / 2.266)
are correctly rounded to 28 significant digits. Callers round for display or storage, not this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Final, Literal

QUANTITATIVE = "quantitative"
QUALITATIVE = "qualitative"

PRESENT: Final = "present"
ABSENT: Final = "absent"
Presence = Literal["present", "absent"]

Number = Decimal | int | float | str


class AnalyteError(ValueError):
    """An analyte, unit or value this module cannot accept; `field` names the offending input.

    `field` is "analyte", "unit" or "value" here ("sex", "age", "cutoffs" in patients/labs/reference_ranges.py),
    so an API can map it straight onto a 4xx error body.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Unit:
    """A unit an analyte is accepted in, and the exact factor that takes it to the canonical unit.

    canonical value = value x factor. `aliases` are other spellings of the *same* unit (not other units).
    """

    symbol: str
    factor: Fraction
    source: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analyte:
    code: str
    name: str
    loinc: str
    canonical_unit: str
    units: tuple[Unit, ...]
    # Highest physically possible value in the canonical unit (inclusive). Any negative value is refused
    # for every analyte (RULES first section: "any negative value").
    plausible_max: Decimal | None
    alternate_loinc: tuple[str, ...] = ()
    kind: str = QUANTITATIVE
    # True where zero itself is outside the physically possible range (RULES first section): a measure of the
    # red cells a blood sample holds cannot be 0 for a living patient, so 0 is a slip (a blank cell, a unit
    # lost), not a very low value. Not a clinical threshold: no positive value is refused by it.
    positive: bool = False

    @property
    def loinc_codes(self) -> tuple[str, ...]:
        return (self.loinc, *self.alternate_loinc)

    @property
    def display_decimals(self) -> int:
        return DISPLAY_DECIMALS.get(self.code, 1)

    @property
    def unit_symbols(self) -> tuple[str, ...]:
        return tuple(unit.symbol for unit in self.units)


# At most this many decimals when a value is shown to people (format_value); 1 for the others. A display
# choice, not a clinical number: the precision labs report in plus one, so an entered value is not rounded,
# only the tails of unit conversions (100 pmol/L of B12 = 135.501355 ng/L, shown 135.5).
DISPLAY_DECIMALS: dict[str, int] = {
    "hematocrit": 3,  # 35.5 % = 0.355 L/L
    "haptoglobin": 3,  # 35.5 mg/dL = 0.355 g/L
    "reticulocytes_pct": 2,
    "folate": 2,
    "potassium": 2,
    "inr": 2,
    "esr": 0,
}


def _canonical(symbol: str, *aliases: str) -> Unit:
    return Unit(symbol, Fraction(1), "canonical unit (RULES, analyte table)", aliases)


_TABLE = "RULES analyte table"

# Plausibility bounds marked [bound] below are NOT clinical thresholds: they are plausibility bounds
# to catch unit slips (e.g. a g/dL value sent as g/L, µmol/L sent as mg/dL). Only the hemoglobin and
# platelet limits are given by RULES; the others are deliberately generous physical limits chosen
# here, so that no real (even extreme) patient value is ever refused.
CATALOGUE: tuple[Analyte, ...] = (
    Analyte(
        code="hemoglobin", name="Hemoglobin", loinc="718-7", canonical_unit="g/L",
        units=(
            _canonical("g/L"),
            Unit("g/dL", Fraction(10), f"{_TABLE}; §5.3: g/L = g/dL x 10"),
            Unit("mmol/L", Fraction("16.11"), f"{_TABLE}: mmol/L x 16.11"),
        ),
        # RULES first section: hemoglobin above 300 g/L is refused.
        plausible_max=Decimal(300),
        positive=True,
    ),
    Analyte(
        code="hematocrit", name="Hematocrit", loinc="4544-3", alternate_loinc=("20570-8",),  # §7.1
        canonical_unit="L/L",
        units=(
            _canonical("L/L"),
            Unit("%", Fraction(1, 100), f"{_TABLE}: % / 100"),
        ),
        plausible_max=Decimal(1),  # [bound] a volume fraction cannot exceed 1 L/L
        positive=True,
    ),
    Analyte(
        code="platelets", name="Platelets", loinc="777-3", alternate_loinc=("26515-7",),  # §7.1
        canonical_unit="10^9/L",
        units=(
            _canonical("10^9/L"),
            Unit("10^3/uL", Fraction(1), f"{_TABLE}; §5.3: x10^9/L = x10^3/uL"),
            Unit("K/uL", Fraction(1), f"{_TABLE}; §5.3: x10^9/L = K/uL"),
            Unit("/uL", Fraction(1, 1000), f"{_TABLE}; §5.3: cells/uL = (x10^9/L) x 1000",
                 ("cells/ul",)),
        ),
        # RULES first section: platelets above 5000 x10^9/L are refused.
        plausible_max=Decimal(5000),
    ),
    Analyte(
        code="mcv", name="MCV", loinc="787-2", alternate_loinc=("30428-7",),  # §7.1
        canonical_unit="fL", units=(_canonical("fL"),),
        plausible_max=Decimal(200),  # [bound] red cells twice the upper normal size do not exist
        positive=True,
    ),
    Analyte(
        code="b12_total", name="Vitamin B12 (total)", loinc="2132-9",
        alternate_loinc=("14685-2",),  # §7.1: the moles/volume (pmol/L) code
        canonical_unit="ng/L",
        units=(
            _canonical("ng/L"),
            Unit("pg/mL", Fraction(1), f"{_TABLE}; §5.3: 1 pg/mL = 1 ng/L"),
            Unit("pmol/L", 1 / Fraction("0.738"), f"{_TABLE}; §5.3: pmol/L = pg/mL x 0.738, so / 0.738"),
        ),
        # [bound] assays top out near 2000 ng/L undiluted; injected hydroxocobalamin can read far higher
        plausible_max=Decimal(100_000),
    ),
    Analyte(
        code="b12_active", name="Active B12 (holotranscobalamin)", loinc="72160-5",
        canonical_unit="pmol/L", units=(_canonical("pmol/L"),),
        plausible_max=Decimal(10_000),  # [bound] NWL range tops at 165 pmol/L (§5.2)
    ),
    Analyte(
        code="mma", name="Methylmalonic acid", loinc="13964-2", canonical_unit="nmol/L",
        units=(
            _canonical("nmol/L"),
            Unit("umol/L", Fraction(1000), f"{_TABLE}; §5.3: nmol/L = umol/L x 1000"),
            # Not in the analyte table's list, but §5.3 gives nmol/mL = umol/L exactly, and Mayo, the
            # source of the 400 nmol/L fallback (§5.2, §8 Q4), reports MMA in nmol/mL.
            Unit("nmol/mL", Fraction(1000), "§5.3: nmol/mL = umol/L (Mayo reports nmol/mL)"),
        ),
        # [bound] severe deficiency reaches tens of umol/L; 1 mmol/L is beyond any serum value
        plausible_max=Decimal(1_000_000),
    ),
    Analyte(
        code="homocysteine", name="Homocysteine", loinc="13965-9", canonical_unit="umol/L",
        units=(_canonical("umol/L"),),
        plausible_max=Decimal(1000),  # [bound] classical homocystinuria reaches a few hundred umol/L
    ),
    Analyte(
        code="ldh", name="LDH", loinc="2532-0", alternate_loinc=("14804-9",),  # §7.1 (Mayo)
        canonical_unit="U/L",
        units=(
            _canonical("U/L"),
            Unit("IU/L", Fraction(1), f"{_TABLE}; §5.3: U/L = IU/L"),
            Unit("ukat/L", Fraction(60), f"{_TABLE}; §5.3: ukat/L x 60 = U/L"),
        ),
        # [bound] pseudo-TMA median LDH is 7310 IU/L (RULES S-3, NOEL-2013); 100 000 leaves wide room
        plausible_max=Decimal(100_000),
    ),
    Analyte(
        code="reticulocytes_pct", name="Reticulocytes (%)", loinc="17849-1",
        alternate_loinc=("4679-7", "31112-6"),  # §7.1
        canonical_unit="%", units=(_canonical("%"),),
        plausible_max=Decimal(100),  # [bound] a share of red cells cannot exceed 100 %
    ),
    Analyte(
        code="reticulocytes_abs", name="Reticulocytes (absolute)", loinc="14196-0",
        alternate_loinc=("60474-4",),  # §7.1 (marked [U] there)
        canonical_unit="10^9/L",
        units=(
            _canonical("10^9/L"),
            Unit("10^3/uL", Fraction(1), f"{_TABLE}; §5.3: x10^9/L = x10^3/uL", ("k/ul",)),
        ),
        # [bound] cannot exceed the red-cell count, itself below 10 x10^12/L = 10 000 x10^9/L
        plausible_max=Decimal(10_000),
    ),
    Analyte(
        code="haptoglobin", name="Haptoglobin", loinc="4542-7", canonical_unit="g/L",
        units=(
            _canonical("g/L"),
            Unit("mg/dL", Fraction(1, 100), f"{_TABLE}; §5.3: mg/dL = g/L x 100, so / 100"),
        ),
        plausible_max=Decimal(20),  # [bound] typical range ~0.3-2.0 g/L (§5.2)
    ),
    Analyte(
        code="bilirubin_indirect", name="Bilirubin (indirect)", loinc="1971-1", canonical_unit="umol/L",
        units=(
            _canonical("umol/L"),
            Unit("mg/dL", Fraction("17.1"), f"{_TABLE}; §5.3: umol/L = mg/dL x 17.1"),
        ),
        plausible_max=Decimal(2000),  # [bound] the most severe adult jaundice stays below ~1000 umol/L
    ),
    Analyte(
        code="folate", name="Folate (serum)", loinc="2284-8", canonical_unit="ug/L",
        # §7.1 lists RBC folate 15152-2 as a *different* test: it is deliberately not an alternate here.
        units=(
            _canonical("ug/L"),
            Unit("ng/mL", Fraction(1), f"{_TABLE}: ng/mL = ug/L"),
            Unit("nmol/L", 1 / Fraction("2.266"), f"{_TABLE}; §5.3: nmol/L = ng/mL x 2.266, so / 2.266"),
        ),
        plausible_max=Decimal(1000),  # [bound] assays top out near 20-25 ug/L undiluted
    ),
    Analyte(
        code="adamts13_activity", name="ADAMTS13 activity", loinc="53622-7", canonical_unit="%",
        units=(_canonical("%"),),
        # [bound] activity is a percentage of pooled normal plasma, so it can exceed 100 %
        plausible_max=Decimal(500),
    ),
    Analyte(
        code="esr", name="ESR", loinc="4537-7", alternate_loinc=("30341-2",),  # §7.1; stored only (S-8)
        canonical_unit="mm/h", units=(_canonical("mm/h", "mm/hr"),),
        plausible_max=Decimal(200),  # [bound] a Westergren tube is 200 mm long
    ),
    Analyte(
        code="schistocytes", name="Schistocytes", loinc="800-3", canonical_unit="present/absent",
        units=(), plausible_max=None, kind=QUALITATIVE,
    ),
    Analyte(
        code="potassium", name="Potassium", loinc="2823-3", canonical_unit="mmol/L",
        units=(_canonical("mmol/L"),),
        plausible_max=Decimal(30),  # [bound] above ~10 mmol/L is not survivable; haemolysed samples read higher
    ),
    Analyte(
        code="creatinine", name="Creatinine", loinc="2160-0", canonical_unit="umol/L",
        units=(
            _canonical("umol/L"),
            Unit("mg/dL", Fraction("88.4"), f"{_TABLE}; §5.3: umol/L = mg/dL x 88.4"),
        ),
        # [bound] severe kidney failure stays below a few thousand umol/L; catches umol/L sent as mg/dL
        plausible_max=Decimal(10_000),
    ),
    Analyte(
        code="inr", name="INR", loinc="6301-6", alternate_loinc=("34714-6",),  # §7.1
        # A dimensionless ratio: labs send it with no unit, "1" (UCUM) or "ratio".
        canonical_unit="ratio", units=(_canonical("ratio", "", "1", "inr"),),
        plausible_max=Decimal(50),  # [bound] analysers report "> 10" to "> 20"
    ),
    Analyte(
        code="ferritin", name="Ferritin", loinc="2276-4", canonical_unit="ug/L",
        units=(
            _canonical("ug/L"),
            Unit("ng/mL", Fraction(1), f"{_TABLE}: ng/mL = ug/L"),
        ),
        # [bound] haemophagocytic syndromes can exceed 100 000 ug/L
        plausible_max=Decimal(500_000),
    ),
)

# LOINC codes a lab may send that look close but are different tests: refuse them by name (§7.1).
NOT_THESE_LOINC: dict[str, str] = {
    "20646-6": "homocystine, not homocysteine; RULES §7.1 says do not use it (homocysteine is 13965-9)",
    "15152-2": "RBC folate, a different test from serum folate (2284-8), RULES §7.1",
    "40824-5": "ADAMTS13 antibody/inhibitor, not ADAMTS13 activity (53622-7), RULES §7.1",
}

_BY_CODE: dict[str, Analyte] = {analyte.code: analyte for analyte in CATALOGUE}
_BY_LOINC: dict[str, Analyte] = {code: analyte for analyte in CATALOGUE for code in analyte.loinc_codes}
if len(_BY_LOINC) != sum(len(analyte.loinc_codes) for analyte in CATALOGUE):
    raise RuntimeError("a LOINC code is listed under two analytes")

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
# "x10^9/L", "10*9/L", "10**9/L", "10E9/L" -> "10^9/L". A bare "109/L" is refused: it cannot be told from a typo.
_POWER_OF_TEN = re.compile(r"^(?:x|\*)?10(?:\^|\*\*|\*|e)(\d+)/")


def normalize_unit(text: str) -> str:
    """One spelling per unit: case-, space- and micro-sign-insensitive, "x10^9/L" = "10*9/L" = "10⁹/L"."""
    spelled = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹]+", lambda m: "^" + m.group().translate(_SUPERSCRIPTS), text)
    spelled = spelled.replace("µ", "u").replace("μ", "u").replace("×", "x")  # micro sign, Greek mu
    spelled = re.sub(r"\s+", "", spelled).casefold()
    spelled = spelled.replace("{", "").replace("}", "").replace("[iu]", "iu")  # UCUM: {ratio}, [IU]/L
    spelled = re.sub(r"^mcg/", "ug/", spelled)
    return _POWER_OF_TEN.sub(r"10^\1/", spelled)


def _unit_index(analyte: Analyte) -> dict[str, Unit]:
    index: dict[str, Unit] = {}
    for unit in analyte.units:
        for spelling in (unit.symbol, *unit.aliases):
            index[normalize_unit(spelling)] = unit
    return index


_UNITS: dict[str, dict[str, Unit]] = {analyte.code: _unit_index(analyte) for analyte in CATALOGUE}


def _accepted_analytes() -> str:
    return ", ".join(f"{a.code} ({'/'.join(a.loinc_codes)})" for a in CATALOGUE)


def resolve(code_or_loinc: str) -> Analyte:
    """The analyte for a catalogue code (any case) or any of its LOINC codes, preferred or alternate."""
    key = code_or_loinc.strip() if isinstance(code_or_loinc, str) else ""
    analyte = _BY_CODE.get(key.casefold()) or _BY_LOINC.get(key)
    if analyte is not None:
        return analyte
    if key in NOT_THESE_LOINC:
        raise AnalyteError("analyte", f"LOINC {key} is {NOT_THESE_LOINC[key]}.")
    raise AnalyteError("analyte", f"Unknown analyte {code_or_loinc!r}. Accepted: {_accepted_analytes()}.")


def find_unit(analyte: Analyte, unit: str) -> Unit:
    found = _UNITS[analyte.code].get(normalize_unit(unit)) if isinstance(unit, str) else None
    if found is None:
        accepted = ", ".join(analyte.unit_symbols) or "none: it is reported as present or absent"
        raise AnalyteError(
            "unit", f"Unit {unit!r} is not accepted for {analyte.code}. Accepted units: {accepted}."
        )
    return found


def _as_decimal(value: Number, analyte: Analyte, unit: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise AnalyteError("value", f"{analyte.code} value must be a number, not {value!r}.")
    if isinstance(value, str) and not value.isascii():
        # Decimal() also reads full-width and Arabic-Indic digits ("１２０", "١٢٠").
        raise AnalyteError("value", f"{analyte.code} value {value!r} must be written with the digits 0-9.")
    try:
        # str() first so that a float such as 12.1 becomes Decimal("12.1"), not its binary expansion.
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise AnalyteError("value", f"{analyte.code} value {value!r} {unit} is not a number.") from None
    if not number.is_finite():
        raise AnalyteError("value", f"{analyte.code} value {value} {unit} is not a finite number.")
    return number


def to_canonical(analyte: Analyte, value: Number, unit: str) -> Decimal:
    """`value` in `unit`, converted exactly to the analyte's canonical unit (see the module docstring).

    Refuses (AnalyteError): an unknown unit (field "unit"), a value that is not a finite number, is
    negative, zero where the analyte cannot be (`positive`), or is above the analyte's physically possible
    maximum (field "value", naming the
    analyte, value and unit, as the RULES first section requires).
    """
    if analyte.kind == QUALITATIVE:
        raise AnalyteError("value", f"{analyte.code} is reported as present or absent, not as a number.")
    found = find_unit(analyte, unit)
    number = _as_decimal(value, analyte, unit)
    exact = Fraction(number) * found.factor
    with localcontext() as context:
        context.prec = 28
        canonical = Decimal(exact.numerator) / Decimal(exact.denominator)
    if canonical < 0:
        raise AnalyteError(
            "value", f"{analyte.code} value {number} {found.symbol} is negative, which is not physically possible."
        )
    if canonical == 0 and analyte.positive:
        raise AnalyteError(
            "value",
            f"{analyte.code} value {number} {found.symbol} is zero, which is not physically possible for a living "
            "patient; check the result.",
        )
    if analyte.plausible_max is not None and canonical > analyte.plausible_max:
        shown = "" if found.factor == 1 else f" ({_brief(canonical)} {analyte.canonical_unit})"
        raise AnalyteError(
            "value",
            f"{analyte.code} value {number} {found.symbol}{shown} is above the physically possible maximum of "
            f"{analyte.plausible_max} {analyte.canonical_unit}; check the unit.",
        )
    return canonical


def format_value(value: Number | None, analyte: str | Analyte | None = None, *, unit: bool = False) -> str:
    """A number for people (alert texts, staff emails, trends, admin): never an exponent, no trailing zeros,
    and with an analyte at most its `display_decimals` (half up): 100.000000 -> "100", Decimal("1E+2") ->
    "100", 0.350000 -> "0.35", 135.501355 ng/L -> "135.5". Without an analyte nothing is rounded, only
    the zeros trimmed (nor with a code it does not know: a display helper never raises on a stored row).
    `unit=True` appends the analyte's canonical unit ("100 g/L"). None -> "".
    """
    if value is None:
        return ""
    found: Analyte | None = (
        _BY_CODE.get(analyte) or _BY_LOINC.get(analyte) if isinstance(analyte, str) else analyte
    )
    number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    if found is not None and number.is_finite():
        with localcontext() as context:
            context.prec = 40
            number = number.quantize(Decimal(1).scaleb(-found.display_decimals), rounding=ROUND_HALF_UP)
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return f"{text} {found.canonical_unit}" if unit and found is not None else text


def _brief(number: Decimal) -> str:
    return f"{number.quantize(Decimal('0.01')).normalize():f}"


# Lab wording for a smear finding, mapped to the canonical present/absent (RULES: schistocytes 800-3).
_PRESENCE_WORDS: dict[str, Presence] = {
    "present": PRESENT, "seen": PRESENT, "positive": PRESENT, "detected": PRESENT,
    "absent": ABSENT, "not seen": ABSENT, "none seen": ABSENT, "negative": ABSENT, "not detected": ABSENT,
}


def to_presence(analyte: Analyte, value: str) -> Presence:
    """A qualitative result (schistocytes) as "present" or "absent"."""
    if analyte.kind != QUALITATIVE:
        raise AnalyteError("value", f"{analyte.code} is a number with a unit, not present/absent.")
    word = " ".join(value.split()).casefold() if isinstance(value, str) else ""
    if word not in _PRESENCE_WORDS:
        raise AnalyteError(
            "value", f"{analyte.code} value {value!r} is not understood. Accepted: {', '.join(_PRESENCE_WORDS)}."
        )
    return _PRESENCE_WORDS[word]
