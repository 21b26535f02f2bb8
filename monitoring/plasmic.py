"""The PLASMIC score (RULES §6) as a pure function.

Pure: no Django, no database. The caller passes, per input, the value it chose
(§6.2: the earliest available value for a new presentation) or None when it is missing, and gets back
the score with every component and the evidence behind it.

- §6.1: seven components, one point each, total 0-7.
- §6.2 [P]: a missing input is never counted as 0 points. The result is then "incomplete" and carries
  the lowest and highest score the missing inputs allow.
- §6.2: the score applies only when platelets < 150 x10^9/L AND schistocytes are seen; the result says
  whether it applies, and why not.
- §6.3: risk bands 0-4 low, 5 intermediate, 6-7 high (the 2017 bands, §8 Q13).
- §6.5 [P]: the experimental "PLASMIC-retic" variant awards the haemolysis point only for
  reticulocytes > 2.5 %; it is labelled "not validated, do not use for decisions".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

# §6.1 component thresholds, canonical units (patients/labs/analytes.py) [V-copy, PLASMIC].
PLATELETS_BELOW = Decimal(30)  # P: platelets < 30 x10^9/L
RETICULOCYTES_ABOVE_PCT = Decimal("2.5")  # L: reticulocytes > 2.5 %
# L: indirect bilirubin > 2.0 mg/dL; §5.3: x 17.1 = 34.2 umol/L (§6.1 rounds it to 34).
INDIRECT_BILIRUBIN_ABOVE = Decimal("34.2")
MCV_BELOW = Decimal(90)  # M: MCV < 90 fL
INR_BELOW = Decimal("1.5")  # I: INR < 1.5
CREATININE_BELOW = Decimal("176.8")  # C: creatinine < 2.0 mg/dL = 176.8 umol/L (§5.3)
# §6.2 applicability: platelets < 150 x10^9/L and schistocytes seen.
APPLIES_BELOW_PLATELETS = Decimal(150)

EXPERIMENTAL_LABEL = "PLASMIC-retic (experimental): not validated, do not use for decisions (RULES §6.5)."
# §6.4 caution, shown with every score.
CAUTION = (
    "The score does not exclude TTP or confirm B12-deficiency pseudo-TMA: published pseudo-TMA cases "
    "scored 4-5. ADAMTS13 activity and the B12 result are decisive (RULES §6.4)."
)

Band = Literal["low", "intermediate", "high"]


@dataclass(frozen=True)
class Measured:
    """One lab input: its canonical value and where it came from (for the evidence)."""

    value: Decimal
    result_id: int | None = None
    collected_on: str | None = None


@dataclass(frozen=True)
class PlasmicInputs:
    platelets: Measured | None = None
    reticulocytes_pct: Measured | None = None
    # Haptoglobin "undetectable" is a yes/no the caller decides from the result (see monitoring.selectors).
    haptoglobin_undetectable: bool | None = None
    haptoglobin: Measured | None = None
    indirect_bilirubin: Measured | None = None
    mcv: Measured | None = None
    inr: Measured | None = None
    creatinine: Measured | None = None
    active_cancer: bool | None = None  # None: not recorded either way
    transplant: bool | None = None
    schistocytes_present: bool | None = None


@dataclass(frozen=True)
class Component:
    letter: str
    name: str
    points: int | None  # None: the input is missing
    criterion: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    components: tuple[Component, ...]
    min_score: int
    max_score: int
    applicable: bool | None
    applicability: str

    @property
    def complete(self) -> bool:
        return self.min_score == self.max_score

    @property
    def score(self) -> int | None:
        return self.min_score if self.complete else None

    @property
    def band(self) -> Band | None:
        low, high = band_of(self.min_score), band_of(self.max_score)
        return low if low == high else None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components if c.points is None)


def band_of(score: int) -> Band:
    """§6.3: 0-4 low, 5 intermediate, 6-7 high."""
    if score <= 4:
        return "low"
    if score == 5:
        return "intermediate"
    return "high"


def _evidence(measured: Measured | None) -> dict[str, Any]:
    if measured is None:
        return {}
    return {"value": str(measured.value), "result_id": measured.result_id, "collected_on": measured.collected_on}


def _below(measured: Measured | None, limit: Decimal) -> int | None:
    return None if measured is None else int(measured.value < limit)


def _hemolysis(inputs: PlasmicInputs, experimental: bool) -> Component:
    retic = None if inputs.reticulocytes_pct is None else inputs.reticulocytes_pct.value > RETICULOCYTES_ABOVE_PCT
    evidence = {
        "reticulocytes_pct": _evidence(inputs.reticulocytes_pct),
        "haptoglobin": {**_evidence(inputs.haptoglobin), "undetectable": inputs.haptoglobin_undetectable},
        "indirect_bilirubin": _evidence(inputs.indirect_bilirubin),
    }
    if experimental:
        criterion = "reticulocytes > 2.5 % (reticulocytosis only; §6.5)"
        return Component("L", "hemolysis", None if retic is None else int(retic), criterion, evidence)
    bili = None if inputs.indirect_bilirubin is None else inputs.indirect_bilirubin.value > INDIRECT_BILIRUBIN_ABOVE
    signs = (retic, inputs.haptoglobin_undetectable, bili)
    criterion = "reticulocytes > 2.5 %, or haptoglobin undetectable, or indirect bilirubin > 34.2 umol/L (2.0 mg/dL)"
    # Any one sign earns the point; only when all three are known and negative is it 0.
    if any(sign is True for sign in signs):
        points: int | None = 1
    elif all(sign is False for sign in signs):
        points = 0
    else:
        points = None
    return Component("L", "hemolysis", points, criterion, evidence)


def _negated_fact(value: bool | None) -> int | None:
    """ "No active cancer" / "no transplant" score 1 when the fact is recorded as absent."""
    return None if value is None else int(not value)


def score(inputs: PlasmicInputs, *, experimental: bool = False) -> Score:
    """The PLASMIC score (§6.1), or its experimental reticulocyte variant (§6.5) when `experimental`."""
    components = (
        Component(
            "P",
            "platelets",
            _below(inputs.platelets, PLATELETS_BELOW),
            "platelets < 30 x10^9/L",
            _evidence(inputs.platelets),
        ),
        _hemolysis(inputs, experimental),
        Component(
            "A",
            "no_active_cancer",
            _negated_fact(inputs.active_cancer),
            "no active cancer in the previous year",
            {"active_cancer": inputs.active_cancer},
        ),
        Component(
            "S",
            "no_transplant",
            _negated_fact(inputs.transplant),
            "no solid-organ or stem-cell transplant",
            {"transplant": inputs.transplant},
        ),
        Component("M", "mcv", _below(inputs.mcv, MCV_BELOW), "MCV < 90 fL", _evidence(inputs.mcv)),
        Component("I", "inr", _below(inputs.inr, INR_BELOW), "INR < 1.5", _evidence(inputs.inr)),
        Component(
            "C",
            "creatinine",
            _below(inputs.creatinine, CREATININE_BELOW),
            "creatinine < 176.8 umol/L (2.0 mg/dL)",
            _evidence(inputs.creatinine),
        ),
    )
    known = sum(c.points for c in components if c.points is not None)
    unknown = sum(1 for c in components if c.points is None)
    applicable, applicability = _applicability(inputs)
    return Score(components, known, known + unknown, applicable, applicability)


def _applicability(inputs: PlasmicInputs) -> tuple[bool | None, str]:
    """§6.2: apply only if platelets < 150 x10^9/L and schistocytes are seen on the smear."""
    reasons = []
    if inputs.platelets is not None and inputs.platelets.value >= APPLIES_BELOW_PLATELETS:
        reasons.append("platelets are not below 150 x10^9/L")
    if inputs.schistocytes_present is False:
        reasons.append("no schistocytes were seen on the film")
    if reasons:
        return False, "Does not apply: " + " and ".join(reasons) + " (RULES §6.2)."
    if inputs.platelets is None or inputs.schistocytes_present is None:
        return None, (
            "Applies only when platelets < 150 x10^9/L and schistocytes are seen (RULES §6.2); "
            "a platelet count and a blood film for schistocytes are needed to tell."
        )
    return True, "Applies: platelets < 150 x10^9/L and schistocytes seen (RULES §6.2)."
