"""The clinical numbers of the ten built-in protocols, pinned against RULES §1 (as revised by §10).

The protocols ship as data (regimens/protocol_data.py, loaded by migration regimens/0002 and 0005) and admins may
edit them, so nothing else in the suite notices when a dose, an interval or a dose count changes. These tests read
the protocols the way the application does, `GET /api/protocols/` over the rows the migrations loaded, and compare
every phase with the table below. Each row quotes the RULES text it comes from (RULES.md, retold in
docs/clinical-reference.md: "Names the software uses" > "Protocol codes", §1.2 template table, §1.3, §1.4, §2 and
§10).

A row that fails here means the shipped data no longer says what RULES says: change the data (or get RULES
changed), never the row without a RULES quote for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from rest_framework.test import APIClient

from regimens.models import Protocol

pytestmark = pytest.mark.django_db

HYDROXO = "hydroxocobalamin"
CYANO = "cyanocobalamin"

Range = tuple[int | None, int | None]
NO_RANGE: Range = (None, None)


class Phase(NamedTuple):
    """One phase as RULES states it. Ranges are what a clinician may set without a reason, [min, max] as the API
    serves them (`ranges`); (None, None) where RULES gives a single value."""

    key: str
    drug: str
    dose_mcg: int
    route: str
    spacing: str
    spacing_value: int
    end_condition: str
    source_rule: str
    evidence_tag: str
    end_value: int | None = None  # doses (fixed_count) or days (fixed_duration)
    dose_range: Range = NO_RANGE
    spacing_range: Range = NO_RANGE
    count_range: Range = NO_RANGE  # the API's "count" range: doses, or days for a fixed_duration phase
    gate_mentions: tuple[str, ...] = ()  # words the start gate must carry; () = no gate
    review_every_days: int | None = None
    prompt_mentions: tuple[str, ...] = ()  # words the start prompt must carry; () = no prompt
    self_administered: bool = False


class Expected(NamedTuple):
    rules: str
    phases: tuple[Phase, ...]
    oral: bool  # carries the L-11 recheck step (§10 V-10)


# fmt: off
EXPECTED: dict[str, Expected] = {
    # "Protocol codes": `hydroxo-uk-standard` | R-UK-1, R-UK-3a | "hydroxocobalamin 1000 mcg IM, 3 times a week,
    # 6 doses → 1000 mcg IM every 12 weeks (clinician may set 8–13 weeks), lifelong".
    "hydroxo-uk-standard": Expected(
        rules="R-UK-1, R-UK-3a",
        oral=False,
        phases=(
            # R-UK-1: "hydroxocobalamin 1 mg (1000 mcg) IM, 3 times a week for 2 weeks. That is 6 doses" [BNF; CKS;
            # BNF is V-copy].
            Phase(
                key="loading", drug=HYDROXO, dose_mcg=1000, route="IM", spacing="times_per_week", spacing_value=3,
                end_condition="fixed_count", end_value=6, source_rule="R-UK-1", evidence_tag="V",
            ),
            # R-UK-3a: "Hydroxocobalamin 1 mg IM every 2–3 months, lifelong"; "[P] Store the interval as a range of
            # 56–91 days. The clinician picks the value; default 84 days (12 weeks)" (= 8 to 13 weeks).
            Phase(
                key="maintenance", drug=HYDROXO, dose_mcg=1000, route="IM", spacing="every_n_weeks", spacing_value=12,
                spacing_range=(8, 13), end_condition="lifelong", source_rule="R-UK-3a", evidence_tag="P",
            ),
        ),
    ),
    # "Protocol codes": `hydroxo-uk-neuro` | R-UK-2, R-UK-3b, §1.3 | "hydroxocobalamin 1000 mcg IM alternate days,
    # clinician-ended, review prompt every 14 days → 1000 mcg IM every 8 weeks, lifelong".
    "hydroxo-uk-neuro": Expected(
        rules="R-UK-2, R-UK-3b, §1.3",
        oral=False,
        phases=(
            # R-UK-2: "hydroxocobalamin 1 mg IM on alternate days (every 48 h) until there is no further improvement";
            # "End condition: `clinician_ended`". §1.3 rule 2: "Review prompt every 14 days"; rule 4: "show the
            # prompt: 'urgent specialist advice (haematology ± neurology) advised'".
            Phase(
                key="loading", drug=HYDROXO, dose_mcg=1000, route="IM", spacing="alternate_days", spacing_value=1,
                end_condition="clinician_ended", review_every_days=14,
                prompt_mentions=("urgent specialist advice (haematology ± neurology) advised",), source_rule="R-UK-2",
                evidence_tag="V",
            ),
            # R-UK-3b: "Hydroxocobalamin 1 mg IM every 2 months, lifelong"; "[P] Default 56 days". RULES gives no
            # range; R-UK-4: "allow the clinician to shorten the interval at any time. No auto-lengthening." (1 to 8
            # weeks: no RULES number, read from R-UK-4).
            Phase(
                key="maintenance", drug=HYDROXO, dose_mcg=1000, route="IM", spacing="every_n_weeks", spacing_value=8,
                spacing_range=(1, 8), end_condition="lifelong", source_rule="R-UK-3b", evidence_tag="P",
            ),
        ),
    ),
    # "Protocol codes": `cyano-us-label` | R-US-1 | "cyanocobalamin 100 mcg IM daily, 7 doses → (gate: clinician
    # confirms reticulocyte response) alternate days, 7 doses → every 3–4 days for 3 weeks → monthly, lifelong".
    "cyano-us-label": Expected(
        rules="R-US-1",
        oral=False,
        phases=(
            # R-US-1 table, phase A: "100 mcg IM or deep SC | daily | 6–7 doses" [FDA-CN V-copy].
            Phase(
                key="daily", drug=CYANO, dose_mcg=100, route="IM", spacing="daily", spacing_value=1,
                end_condition="fixed_count", end_value=7, count_range=(6, 7), source_rule="R-US-1 A", evidence_tag="V",
            ),
            # R-US-1 phase B: "100 mcg | alternate days | 7 doses"; "Gate between A and B: ... 'if there is clinical
            # improvement and if a reticulocyte response is observed'. Model it as `conditional_gate`."
            Phase(
                key="alternate", drug=CYANO, dose_mcg=100, route="IM", spacing="alternate_days", spacing_value=1,
                end_condition="fixed_count", end_value=7,
                gate_mentions=("clinical improvement", "reticulocyte response"), source_rule="R-US-1 B",
                evidence_tag="V",
            ),
            # R-US-1 phase C: "100 mcg | every 3–4 days | for 2–3 weeks (≈4–7 doses)"; Scheduling semantics:
            # "`every 3–4 days` uses 3"; "Protocol codes": "every 3–4 days for 3 weeks".
            Phase(
                key="every-3-days", drug=CYANO, dose_mcg=100, route="IM", spacing="every_n_days", spacing_value=3,
                spacing_range=(3, 4), end_condition="fixed_duration", end_value=21, count_range=(14, 21),
                source_rule="R-US-1 C", evidence_tag="V",
            ),
            # R-US-1 phase D: "100 mcg | monthly | for life".
            Phase(
                key="monthly", drug=CYANO, dose_mcg=100, route="IM", spacing="monthly", spacing_value=1,
                end_condition="lifelong", source_rule="R-US-1 D", evidence_tag="V",
            ),
        ),
    ),
    # "Protocol codes": `hydroxo-us-label` | R-US-2 | "hydroxocobalamin 30 mcg IM daily, 5–10 doses (default 7) →
    # 100 mcg IM monthly, lifelong".
    "hydroxo-us-label": Expected(
        rules="R-US-2",
        oral=False,
        phases=(
            # R-US-2: "30 mcg IM daily for 5–10 days" [FDA-OHCbl V-copy]; default 7 ("Protocol codes").
            Phase(
                key="daily", drug=HYDROXO, dose_mcg=30, route="IM", spacing="daily", spacing_value=1,
                end_condition="fixed_count", end_value=7, count_range=(5, 10), source_rule="R-US-2", evidence_tag="V",
            ),
            # R-US-2: "then 100–200 mcg IM monthly"; "Should be given only intramuscularly."
            Phase(
                key="monthly", drug=HYDROXO, dose_mcg=100, dose_range=(100, 200), route="IM", spacing="monthly",
                spacing_value=1, end_condition="lifelong", source_rule="R-US-2", evidence_tag="V",
            ),
        ),
    ),
    # "Protocol codes": `cyano-1000-us` | R-US-3a | "cyanocobalamin 1000 mcg IM daily, 7 doses → weekly, 4 doses →
    # monthly, lifelong".
    "cyano-1000-us": Expected(
        rules="R-US-3a",
        oral=False,
        phases=(
            # R-US-3(a): "1000 mcg IM daily × 7 days" [ANDRES-REV S; AFP-2017 ... secondary site, S].
            Phase(
                key="daily", drug=CYANO, dose_mcg=1000, route="IM", spacing="daily", spacing_value=1,
                end_condition="fixed_count", end_value=7, source_rule="R-US-3a", evidence_tag="S",
            ),
            # R-US-3(a): "then weekly × 4 weeks".
            Phase(
                key="weekly", drug=CYANO, dose_mcg=1000, route="IM", spacing="every_n_weeks", spacing_value=1,
                end_condition="fixed_count", end_value=4, source_rule="R-US-3a", evidence_tag="S",
            ),
            # R-US-3(a): "then monthly for life".
            Phase(
                key="monthly", drug=CYANO, dose_mcg=1000, route="IM", spacing="monthly", spacing_value=1,
                end_condition="lifelong", source_rule="R-US-3a", evidence_tag="S",
            ),
        ),
    ),
    # "Protocol codes": `cyano-1000-weekly` | R-US-3b | "cyanocobalamin 1000 mcg IM weekly, 8 doses → monthly,
    # lifelong".
    "cyano-1000-weekly": Expected(
        rules="R-US-3b",
        oral=False,
        phases=(
            # R-US-3(b): "1000 mcg IM weekly × 8 weeks" [S: mdedge summary].
            Phase(
                key="weekly", drug=CYANO, dose_mcg=1000, route="IM", spacing="every_n_weeks", spacing_value=1,
                end_condition="fixed_count", end_value=8, source_rule="R-US-3b", evidence_tag="S",
            ),
            # R-US-3(b): "then monthly for life".
            Phase(
                key="monthly", drug=CYANO, dose_mcg=1000, route="IM", spacing="monthly", spacing_value=1,
                end_condition="lifelong", source_rule="R-US-3b", evidence_tag="S",
            ),
        ),
    ),
    # "Protocol codes": `oral-high-dose` | R-ORAL-1 | "cyanocobalamin 1000 mcg PO daily (clinician may set up to
    # 2000 mcg), review at 3 months".
    "oral-high-dose": Expected(
        rules="R-ORAL-1",
        oral=True,
        phases=(
            # R-ORAL-1: "1000–2000 mcg PO daily [AFP-2017 V ...]"; "NG239: ... prescribe at least 1 mg a day";
            # "Review at 3 months ... escalate the dose or switch to IM" (a clinician ends it; the review is L-11).
            # Scheduling semantics: "Oral daily phases are self-administered and ignore clinic days."
            Phase(
                key="oral", drug=CYANO, dose_mcg=1000, dose_range=(1000, 2000), route="PO", spacing="daily",
                spacing_value=1, end_condition="clinician_ended", self_administered=True, source_rule="R-ORAL-1",
                evidence_tag="V",
            ),
        ),
    ),
    # "Protocol codes": `ileal-resection` | R-ILEUM-1 | "cyanocobalamin 1000 mcg IM monthly, lifelong".
    "ileal-resection": Expected(
        rules="R-ILEUM-1",
        oral=False,
        phases=(
            # R-ILEUM-1: "Prophylactic B12 1000 mcg IM monthly for life [SEED-004]".
            Phase(
                key="monthly", drug=CYANO, dose_mcg=1000, route="IM", spacing="monthly", spacing_value=1,
                end_condition="lifelong", source_rule="R-ILEUM-1", evidence_tag="SEED",
            ),
        ),
    ),
    # "Protocol codes": `bariatric-oral` | R-BARI-1 | "cyanocobalamin 1000 mcg PO daily, lifelong".
    "bariatric-oral": Expected(
        rules="R-BARI-1",
        oral=True,
        phases=(
            # R-BARI-1: "1 mg oral B12 daily, indefinitely [AFP-2017 V]"; "End condition: `lifelong`."
            Phase(
                key="oral", drug=CYANO, dose_mcg=1000, route="PO", spacing="daily", spacing_value=1,
                end_condition="lifelong", self_administered=True, source_rule="R-BARI-1", evidence_tag="V",
            ),
        ),
    ),
    # "Protocol codes": `diet-oral` | R-UK-5, R-VEGAN-1 | "cyanocobalamin 50–150 mcg PO daily (default 100), until
    # the clinician ends it".
    "diet-oral": Expected(
        rules="R-UK-5, R-VEGAN-1",
        oral=True,
        phases=(
            # R-UK-5: "Local guidelines use oral cyanocobalamin 50–150 mcg daily for dietary causes ... [LOCAL-MEHT S]";
            # "End condition: `until_cause_resolved`."
            Phase(
                key="oral", drug=CYANO, dose_mcg=100, dose_range=(50, 150), route="PO", spacing="daily",
                spacing_value=1, end_condition="until_cause_resolved", self_administered=True, source_rule="R-UK-5",
                evidence_tag="S",
            ),
        ),
    ),
}
# fmt: on

# "Protocol codes (built-in protocols, shipped as data)": the ten codes of the table.
RULES_CODES = frozenset(
    {
        "hydroxo-uk-standard",
        "hydroxo-uk-neuro",
        "cyano-us-label",
        "hydroxo-us-label",
        "cyano-1000-us",
        "cyano-1000-weekly",
        "oral-high-dose",
        "ileal-resection",
        "bariatric-oral",
        "diet-oral",
    }
)

# §2 L-11: "Oral therapy, month 3 | Optional: B12 or MMA + CBC"; §10 V-10: "L-11 is met by B12 *or* MMA and applies
# to every oral protocol (oral-high-dose, bariatric-oral, diet-oral)". CBC as L-7 names it: "(Hb, MCV, platelets)".
L11_DAY = 90
L11_ANALYTES = frozenset({"b12_total", "mma", "hemoglobin", "mcv", "platelets"})

PHASE_ROWS = [
    pytest.param(code, order, phase, id=f"{code}[{order}]{phase.key}")
    for code, expected in EXPECTED.items()
    for order, phase in enumerate(expected.phases)
]


@pytest.fixture
def served(api: APIClient) -> dict[str, dict[str, Any]]:
    """The built-in protocols as `GET /api/protocols/` serves them to a clinic's staff, by code."""
    response = api.get("/api/protocols/", {"is_builtin": "true", "page_size": 500})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next"] is None
    return {protocol["code"]: protocol for protocol in body["results"]}


def mentions(text: str, words: tuple[str, ...]) -> tuple[str, ...]:
    """The `words` that `text` carries; a text where the row expects none is returned whole, so it shows."""
    if not words:
        return (text,) if text else ()
    return tuple(word for word in words if word in text.lower())


def as_rules_state(phase: dict[str, Any], expected: Phase) -> dict[str, Any]:
    """The served phase in the shape of a `Phase` row (gate and prompt reduced to the words the row asks for)."""
    return {
        "key": phase["key"],
        "drug": phase["drug"],
        "dose_mcg": phase["dose_mcg"],
        "route": phase["route"],
        "spacing": phase["spacing"],
        "spacing_value": phase["spacing_value"],
        "end_condition": phase["end_condition"],
        "source_rule": phase["source_rule"],
        "evidence_tag": phase["evidence_tag"],
        "end_value": phase["end_value"],
        "dose_range": tuple(phase["ranges"]["dose_mcg"]),
        "spacing_range": tuple(phase["ranges"]["spacing_value"]),
        "count_range": tuple(phase["ranges"]["count"]),
        "gate_mentions": mentions(phase["start_gate"], expected.gate_mentions),
        "review_every_days": phase["review_every_days"],
        "prompt_mentions": mentions(phase["prompt"], expected.prompt_mentions),
        "self_administered": phase["self_administered"],
    }


def test_the_builtin_protocol_codes_are_exactly_the_ten_rules_names(served: dict[str, dict[str, Any]]) -> None:
    assert set(served) == RULES_CODES
    assert set(Protocol.objects.filter(is_builtin=True).values_list("code", flat=True)) == RULES_CODES
    assert set(EXPECTED) == RULES_CODES  # the table above covers every one of them


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_the_protocol_is_shared_and_names_its_rules_and_phases(code: str, served: dict[str, dict[str, Any]]) -> None:
    protocol = served[code]
    expected = EXPECTED[code]

    assert (protocol["rules"], protocol["is_builtin"], protocol["active"], protocol["clinic"]) == (
        expected.rules, True, True, None,
    )  # fmt: skip
    assert [(p["order"], p["key"]) for p in protocol["phases"]] == [
        (order, phase.key) for order, phase in enumerate(expected.phases)
    ]


@pytest.mark.parametrize(("code", "order", "expected"), PHASE_ROWS)
def test_the_phase_is_as_rules_states_it(
    code: str, order: int, expected: Phase, served: dict[str, dict[str, Any]]
) -> None:
    phases = served[code]["phases"]
    assert order < len(phases), f"{code} has no phase {order}"

    assert as_rules_state(phases[order], expected) == expected._asdict()


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_only_the_oral_protocols_carry_the_month_3_lab_check(code: str, served: dict[str, dict[str, Any]]) -> None:
    steps = served[code]["recheck_steps"]

    if EXPECTED[code].oral:
        assert [(s["rule"], s["day"], frozenset(s["analytes"])) for s in steps] == [("L-11", L11_DAY, L11_ANALYTES)]
    else:
        # §2 L-10: "Serum B12 after starting IM therapy | Do not schedule routinely"; no other protocol step in RULES.
        assert steps == []
