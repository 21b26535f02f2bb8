"""The safety patterns read together with the results (RULES §4, docs/clinical-reference.md) as pure
functions of one patient's loaded results and facts: no database, no clock.

- `pseudo_tma_pattern` (S-3): anaemia, low platelets and haemolysis with B12 low or pending.
- `potassium_check_due` (S-9): severe anaemia at the first dose needs a potassium check.
- `neuro_treatment_delay` (S-6): neurological symptoms and no B12 in time; onset long before T0.
- `sample_taken_after_treatment` (S-13): a B12/folate test drawn after the first dose.

monitoring/evaluation.py loads the `Inputs` and turns the findings into alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
    HEMOLYSIS_MARKERS,
    Finding,
    PatientContext,
    Result,
    RuleSettings,
    StoredResult,
    above_uln,
    baseline,
    below_lln,
    fmt,
    hemolysis_abnormal,
    limits_of,
)
from patients.labs.reference_ranges import b12_status
from patients.selectors import fact_present

# RULES S-3 banner text (verbatim, docs/clinical-reference.md).
S3_BANNER = (
    "Possible B12-deficiency pseudo-TMA. Confirm B12 before or alongside plasma therapy. ADAMTS13 activity "
    "distinguishes it from TTP (TTP usually < 10%)."
)
S3_ADAMTS13_TEXT = "TTP unlikely; plasma exchange may be avoidable: clinician decision"
S3_ACTION_TEXT = (
    "Decision support only: never delays or blocks plasma exchange. Draw ADAMTS13 activity before any plasma "
    "therapy; confirm B12; blood film for schistocytes."
)
# RULES S-3 [V, Mayo]: ADAMTS13 < 10 % is highly indicative of TTP.
S3_ADAMTS13_TTP_BELOW = Decimal(10)
# RULES S-6(b) [V, FDA-CN]: deficiency for longer than 3 months may leave permanent lesions (90 days).
S6B_ONSET_DAYS_BEFORE_T0 = 90
B12_TESTS = ("b12_total", "b12_active", "mma", "homocysteine", "folate")  # RULES S-13 "B12/folate test"


@dataclass
class Inputs:
    """What the patterns read: one patient's results and facts as of `at`, loaded by monitoring/evaluation.py."""

    patient: Any
    at: datetime
    today: date
    t0: date | None
    stored: list[StoredResult]
    facts: Sequence[Any]
    ctx: PatientContext
    settings: RuleSettings = DEFAULT_SETTINGS
    # Qualitative rows (schistocytes present/absent): `analyte`, `presence`, `collected_at`.
    qualitative: list[Any] = field(default_factory=list)
    # When the patient's "neurological involvement" flag was last switched on (None: off). §10 V-5: S-6(a).
    neuro_flag_since: datetime | None = None

    @property
    def results(self) -> tuple[Result, ...]:
        return tuple(s.result for s in self.stored)

    def ids(self, analyte: str, on: str | date | None = None) -> list[int]:
        day = date.fromisoformat(on) if isinstance(on, str) else on
        return [
            s.id for s in self.stored if s.result.analyte == analyte and (day is None or s.result.collected_on == day)
        ]

    def latest(self, analyte: str) -> StoredResult | None:
        series = [s for s in self.stored if s.result.analyte == analyte]
        return series[-1] if series else None

    def lln(self, result: Result) -> bool:
        return below_lln(result, self.ctx) is True

    def uln(self, result: Result) -> bool:
        return above_uln(result, self.ctx) is True


def _result_evidence(s: StoredResult) -> dict[str, Any]:
    return {
        "id": s.id,
        "analyte": s.result.analyte,
        "value": fmt(s.result.value),
        "collected_on": s.result.collected_on.isoformat(),
    }


# --- safety rules evaluated with the results (RULES §4) ----------------------------------------------


def pseudo_tma_pattern(inp: Inputs) -> Finding | None:
    """S-3 (CRITICAL): latest Hb < LLN and platelets < LLN (150) and >= 1 haemolysis marker abnormal, with B12
    low or pending. Schistocytes are a supporting clue only (never their absence, §8 Q10)."""
    hb, plt = inp.latest("hemoglobin"), inp.latest("platelets")
    if hb is None or plt is None or not inp.lln(hb.result) or not inp.lln(plt.result):
        return None
    markers = [m for m in (inp.latest(a) for a in HEMOLYSIS_MARKERS) if m is not None]
    abnormal = hemolysis_abnormal([m.result for m in markers], inp.ctx)
    if not abnormal:
        return None
    total, active = inp.latest("b12_total"), inp.latest("b12_active")
    b12 = "pending"
    if total is not None or active is not None:
        b12 = b12_status(
            total.result.value if total else None, active.result.value if active else None
        )  # RULES §5.1 NG239 defaults
        if b12 == "unlikely":
            return None
    clues = [
        f"haptoglobin {fmt(r.value)} g/L below the lower limit"
        if r.analyte == "haptoglobin"
        else f"indirect bilirubin {fmt(r.value)} umol/L above the upper limit"
        for r in abnormal
        if r.analyte != "ldh"
    ]
    ldh = inp.latest("ldh")
    if ldh is not None:
        high = limits_of(ldh.result, inp.ctx)[1]
        if high:
            clues.append(f"LDH {fmt(ldh.result.value)} U/L ({Decimal(str(ldh.result.value)) / high:.1f} x ULN)")
    retic = inp.latest("reticulocytes_pct") or inp.latest("reticulocytes_abs")
    if retic is not None and inp.lln(retic.result):
        clues.append(f"reticulocytes low ({fmt(retic.result.value)})")
    mcv = inp.latest("mcv")
    if mcv is not None and inp.uln(mcv.result):
        clues.append(f"MCV high ({fmt(mcv.result.value)} fL)")
    schisto = next((r for r in inp.qualitative if r.analyte == "schistocytes"), None)
    if schisto is not None and schisto.presence == "present":
        clues.append("schistocytes present on the film")
    message = f"{S3_BANNER} B12: {b12}. Supporting clues: {'; '.join(clues)}."
    adamts13 = inp.latest("adamts13_activity")
    if adamts13 is not None and b12 == "deficient":
        low = limits_of(adamts13.result, inp.ctx)[0]
        value = Decimal(str(adamts13.result.value))
        if value >= S3_ADAMTS13_TTP_BELOW or (low is not None and value >= low):
            message += f" ADAMTS13 {fmt(value)}%: {S3_ADAMTS13_TEXT}."
    used = [hb, plt, *markers, *(x for x in (total, active, adamts13, retic, mcv) if x is not None)]
    return Finding(
        kind="pseudo_tma_pattern",
        rule_id="S-3",
        severity="critical",
        message=message,
        action_text=S3_ACTION_TEXT,
        evidence={"b12": b12, "results": [_result_evidence(s) for s in used], "clues": clues},
    )


def potassium_check_due(inp: Inputs) -> tuple[Finding | None, bool]:
    """S-9 (MEDIUM task): Hb < 80 g/L [P] at T0 (baseline) or the severe-megaloblastic flag -> potassium within
    48 h (L-1). Returns (finding, met): `met` once a potassium result on or after T0 exists."""
    if inp.t0 is None:
        return None, False
    t0 = inp.t0
    met = any(s.result.analyte == "potassium" and s.result.collected_on >= t0 for s in inp.stored)
    base = baseline(inp.results, "hemoglobin", t0)
    below = inp.settings.potassium_check_hb_below  # RULES S-9 / L-1 [P]
    flag = fact_present(inp.facts, "severe_megaloblastic")
    if not ((base is not None and Decimal(str(base.value)) < below) or flag is not None):
        return None, met
    evidence: dict[str, Any] = {"t0": t0.isoformat()}
    if base is not None:
        evidence["baseline_hemoglobin"] = str(base.value)
        evidence["result_ids"] = inp.ids("hemoglobin", base.collected_on)
    if flag is not None:
        evidence["fact_ids"] = [flag.pk]
    reason = (
        f"baseline Hb {base.value} g/L < {below}"
        if base is not None and Decimal(str(base.value)) < below
        else ("severe megaloblastic anaemia recorded")
    )
    finding = Finding(
        kind="potassium_check_due",
        rule_id="S-9",
        severity="medium",
        message=f"Serum potassium due within 48 hours of the first dose ({reason}); hypokalaemia risk (S-9, L-1).",
        action_text="Draw serum potassium within 48 h of the first dose and replace if low.",
        evidence=evidence,
    )
    return finding, met


def neuro_treatment_overdue(recorded_at: datetime, first_b12: datetime | None, at: datetime, hours: int) -> bool:
    """S-6(a) [P]: symptoms recorded, and no B12 given by recorded_at + N hours, judged once that time passed."""
    deadline = recorded_at + timedelta(hours=hours)
    return at >= deadline and (first_b12 is None or first_b12 > deadline)


def neuro_treatment_overdue_finding(
    *, fact_id: int | None, recorded_at: datetime, hours: int, flag_since: datetime | None = None
) -> Finding:
    """S-6(a) (HIGH), as the evaluation and the monitoring sweep both raise it. `recorded_at` is when the clock
    started: the earlier of the symptom fact's recording and the neurological-involvement flag (§10 V-5)."""
    what = "Neurological symptoms recorded" if fact_id is not None else "Neurological involvement recorded"
    evidence: dict[str, Any] = {
        "fact_ids": [fact_id] if fact_id is not None else [],
        "recorded_at": recorded_at.isoformat(),
    }
    if flag_since is not None:
        evidence["neurological_involvement_since"] = flag_since.isoformat()
    return Finding(
        kind="neuro_treatment_delay",
        rule_id="S-6(a)",
        severity="high",
        message=f"{what} and no B12 dose within {hours} hours (S-6): do not delay treatment.",
        action_text="Give B12 now; seek urgent specialist advice (haematology ± neurology).",
        evidence=evidence,
    )


def neuro_treatment_start(fact_recorded_at: datetime | None, flag_since: datetime | None) -> datetime | None:
    """§10 V-5: S-6(a) counts from the first sign of neurological involvement in Cobalt: a symptom fact recorded
    or the patient's flag switched on, whichever came first."""
    known = [t for t in (fact_recorded_at, flag_since) if t is not None]
    return min(known) if known else None


def neuro_treatment_delay(inp: Inputs, first_b12: datetime | None) -> Finding | None:
    """S-6: (a) HIGH when no B12 was given within the delay after symptoms were recorded or the neurological-
    involvement flag set (§10 V-5); (b) an INFO note when the symptoms began more than 3 months before the
    first dose."""
    fact = fact_present(inp.facts, "neuro_symptoms")
    start = neuro_treatment_start(fact.recorded_at if fact is not None else None, inp.neuro_flag_since)
    if start is None:
        return None
    hours = inp.settings.neuro_treatment_delay_hours
    if neuro_treatment_overdue(start, first_b12, inp.at, hours):
        return neuro_treatment_overdue_finding(
            fact_id=fact.pk if fact is not None else None,
            recorded_at=start,
            hours=hours,
            flag_since=inp.neuro_flag_since,
        )
    if fact is None:
        return None
    if inp.t0 is not None and fact.onset_date is not None:
        if (inp.t0 - fact.onset_date).days > S6B_ONSET_DAYS_BEFORE_T0:
            return Finding(
                kind="neuro_treatment_delay",
                rule_id="S-6(b)",
                severity="info",
                message=(
                    f"Neurological symptoms began {(inp.t0 - fact.onset_date).days} days before the first dose: "
                    "risk of permanent deficit (S-6)."
                ),
                action_text="",
                evidence={"fact_ids": [fact.pk], "onset_date": fact.onset_date.isoformat(), "t0": inp.t0.isoformat()},
            )
    return None


def sample_taken_after_treatment(inp: Inputs) -> Finding | None:
    if inp.t0 is None:
        return None
    t0 = inp.t0
    late = [s for s in inp.stored if s.result.analyte in B12_TESTS and s.result.collected_on > t0]
    if not late:
        return None
    return Finding(
        kind="sample_after_treatment",
        rule_id="S-13",
        severity="info",
        message="B12/folate test taken after the first B12 dose: result may be falsely reassuring (S-13).",
        action_text="",
        evidence={"t0": t0.isoformat(), "results": [_result_evidence(s) for s in late]},
    )
