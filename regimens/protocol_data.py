"""The built-in protocols of RULES ("Protocol codes"), as data.

Loaded into the database by migration regimens/0002 and editable by admins afterwards.
Every phase cites its RULES rule and evidence tag (§0.1). Doses are in mcg (§1.1).
"""

from __future__ import annotations

from typing import Any

HYDROXO = "hydroxocobalamin"
CYANO = "cyanocobalamin"

NEURO_PROMPT = "Urgent specialist advice (haematology ± neurology) advised (RULES §1.3, CKS; SEED-004)."

# L-11 [P]: lab check at month 3 on oral therapy (absorption or adherence failing is the main risk). RULES §10
# V-10: every oral protocol, and B12 (total or active) *or* MMA meets it (monitoring/evaluation.py ANY_OF).
L11_STEP: dict[str, Any] = dict(
    rule="L-11", day=90, window_before=14, window_after=14,
    analytes=["b12_total", "mma", "hemoglobin", "mcv", "platelets"],
    note="Month 3 on oral therapy: B12 or MMA, and full blood count",
)

PROTOCOLS: list[dict[str, Any]] = [
    {
        "code": "hydroxo-uk-standard",
        "name": "Hydroxocobalamin, UK standard (no neurological involvement)",
        "rules": "R-UK-1, R-UK-3a",
        "source": "BNF hydroxocobalamin monograph; NICE CKS; NG239; SEED-003/004",
        "description": "1 mg IM three times a week for 2 weeks (6 doses), then 1 mg IM every 12 weeks for life "
        "(clinician may set 8-13 weeks).",
        "phases": [
            # R-UK-1: 1 mg IM 3 times a week for 2 weeks = 6 doses [BNF; CKS].
            dict(key="loading", name="Loading", drug=HYDROXO, dose_mcg=1000, route="IM",
                 spacing="times_per_week", spacing_value=3, end_condition="fixed_count", end_value=6,
                 source_rule="R-UK-1", evidence_tag="V"),
            # R-UK-3a [P]: every 56-91 days, default 84 days (12 weeks); §8 Q1.
            dict(key="maintenance", name="Maintenance", drug=HYDROXO, dose_mcg=1000, route="IM",
                 spacing="every_n_weeks", spacing_value=12, spacing_min=8, spacing_max=13,
                 end_condition="lifelong", source_rule="R-UK-3a", evidence_tag="P"),
        ],
    },
    {
        "code": "hydroxo-uk-neuro",
        "name": "Hydroxocobalamin, UK, with neurological involvement",
        "rules": "R-UK-2, R-UK-3b, §1.3",
        "source": "BNF hydroxocobalamin monograph; NICE CKS; SEED-003/004; RULES §1.3",
        "description": "1 mg IM on alternate days until no further improvement (clinician ends it; review every "
        "14 days), then 1 mg IM every 8 weeks for life.",
        "phases": [
            # R-UK-2: alternate days until no further improvement; clinician_ended, review every 14 days [P].
            dict(key="loading", name="Loading (until no further improvement)", drug=HYDROXO, dose_mcg=1000,
                 route="IM", spacing="alternate_days", spacing_value=1, end_condition="clinician_ended",
                 review_every_days=14, prompt=NEURO_PROMPT, source_rule="R-UK-2", evidence_tag="V"),
            # R-UK-3b: every 2 months; [P] default 56 days.
            dict(key="maintenance", name="Maintenance", drug=HYDROXO, dose_mcg=1000, route="IM",
                 spacing="every_n_weeks", spacing_value=8, spacing_min=1, spacing_max=8,
                 end_condition="lifelong", source_rule="R-UK-3b", evidence_tag="P"),
        ],
    },
    {
        "code": "cyano-us-label",
        "name": "Cyanocobalamin 100 mcg, US label (pernicious anaemia)",
        "rules": "R-US-1",
        "source": "FDA cyanocobalamin injection label (FDA-CN)",
        "description": "100 mcg IM daily for 7 doses; if a reticulocyte response is seen, alternate days for 7 "
        "doses, every 3 days for 3 weeks, then monthly for life.",
        "phases": [
            dict(key="daily", name="Daily", drug=CYANO, dose_mcg=100, route="IM", spacing="daily",
                 end_condition="fixed_count", end_value=7, end_min=6, end_max=7,
                 source_rule="R-US-1 A", evidence_tag="V"),
            # The label's gate: "if there is clinical improvement and if a reticulocyte response is observed".
            dict(key="alternate", name="Alternate days", drug=CYANO, dose_mcg=100, route="IM",
                 spacing="alternate_days", end_condition="fixed_count", end_value=7,
                 start_gate="Clinical improvement and a reticulocyte response observed",
                 source_rule="R-US-1 B", evidence_tag="V"),
            # "every 3-4 days for 2-3 weeks": every 3 days (RULES spacing rules) for 3 weeks.
            dict(key="every-3-days", name="Every 3 days", drug=CYANO, dose_mcg=100, route="IM",
                 spacing="every_n_days", spacing_value=3, spacing_min=3, spacing_max=4,
                 end_condition="fixed_duration", end_value=21, end_min=14, end_max=21,
                 source_rule="R-US-1 C", evidence_tag="V"),
            dict(key="monthly", name="Monthly", drug=CYANO, dose_mcg=100, route="IM", spacing="monthly",
                 end_condition="lifelong", source_rule="R-US-1 D", evidence_tag="V"),
        ],
    },
    {
        "code": "hydroxo-us-label",
        "name": "Hydroxocobalamin, US label",
        "rules": "R-US-2",
        "source": "US hydroxocobalamin injection label (FDA-OHCbl)",
        "description": "30 mcg IM daily for 5-10 doses (default 7), then 100 mcg IM monthly for life.",
        "phases": [
            dict(key="daily", name="Daily", drug=HYDROXO, dose_mcg=30, route="IM", spacing="daily",
                 end_condition="fixed_count", end_value=7, end_min=5, end_max=10,
                 source_rule="R-US-2", evidence_tag="V"),
            dict(key="monthly", name="Monthly", drug=HYDROXO, dose_mcg=100, dose_min_mcg=100,
                 dose_max_mcg=200, route="IM", spacing="monthly", end_condition="lifelong",
                 source_rule="R-US-2", evidence_tag="V"),
        ],
    },
    {
        "code": "cyano-1000-us",
        "name": "Cyanocobalamin 1000 mcg IM, daily then weekly then monthly",
        "rules": "R-US-3a",
        "source": "ANDRES-REV; AFP-2017 regimen as summarised by a secondary site",
        "description": "1000 mcg IM daily for 7 doses, weekly for 4 doses, then monthly for life.",
        "phases": [
            dict(key="daily", name="Daily", drug=CYANO, dose_mcg=1000, route="IM", spacing="daily",
                 end_condition="fixed_count", end_value=7, source_rule="R-US-3a", evidence_tag="S"),
            dict(key="weekly", name="Weekly", drug=CYANO, dose_mcg=1000, route="IM", spacing="every_n_weeks",
                 end_condition="fixed_count", end_value=4, source_rule="R-US-3a", evidence_tag="S"),
            dict(key="monthly", name="Monthly", drug=CYANO, dose_mcg=1000, route="IM", spacing="monthly",
                 end_condition="lifelong", source_rule="R-US-3a", evidence_tag="S"),
        ],
    },
    {
        "code": "cyano-1000-weekly",
        "name": "Cyanocobalamin 1000 mcg IM, weekly then monthly",
        "rules": "R-US-3b",
        "source": "Attributed to the US CDC (mdedge summary)",
        "description": "1000 mcg IM weekly for 8 doses, then monthly for life.",
        "phases": [
            dict(key="weekly", name="Weekly", drug=CYANO, dose_mcg=1000, route="IM", spacing="every_n_weeks",
                 end_condition="fixed_count", end_value=8, source_rule="R-US-3b", evidence_tag="S"),
            dict(key="monthly", name="Monthly", drug=CYANO, dose_mcg=1000, route="IM", spacing="monthly",
                 end_condition="lifelong", source_rule="R-US-3b", evidence_tag="S"),
        ],
    },
    {
        "code": "oral-high-dose",
        "name": "High-dose oral cyanocobalamin",
        "rules": "R-ORAL-1",
        "source": "AFP-2017; NG239 (via BMJ, SPS); SEED-002/003/004",
        "description": "1000 mcg by mouth daily (clinician may set up to 2000 mcg); review at 3 months.",
        "phases": [
            dict(key="oral", name="Oral daily", drug=CYANO, dose_mcg=1000, dose_min_mcg=1000, dose_max_mcg=2000,
                 route="PO", spacing="daily", end_condition="clinician_ended", self_administered=True,
                 source_rule="R-ORAL-1", evidence_tag="V"),
        ],
        "recheck_steps": [L11_STEP],
    },
    {
        "code": "ileal-resection",
        "name": "Ileal resection longer than 20 cm",
        "rules": "R-ILEUM-1",
        "source": "SEED-004; DUERKSEN-2006; BATTAT-2014",
        "description": "Cyanocobalamin 1000 mcg IM monthly for life.",
        "phases": [
            dict(key="monthly", name="Monthly", drug=CYANO, dose_mcg=1000, route="IM", spacing="monthly",
                 end_condition="lifelong", source_rule="R-ILEUM-1", evidence_tag="SEED"),
        ],
    },
    {
        "code": "bariatric-oral",
        "name": "After bariatric surgery, oral",
        "rules": "R-BARI-1",
        "source": "AFP-2017; SEED-004; MAJUMDER-2013",
        "description": "Cyanocobalamin 1000 mcg by mouth daily, for life.",
        "phases": [
            dict(key="oral", name="Oral daily", drug=CYANO, dose_mcg=1000, route="PO", spacing="daily",
                 end_condition="lifelong", self_administered=True, source_rule="R-BARI-1", evidence_tag="V"),
        ],
        "recheck_steps": [L11_STEP],
    },
    {
        "code": "diet-oral",
        "name": "Diet-related deficiency, oral",
        "rules": "R-UK-5, R-VEGAN-1",
        "source": "NHS patient page (NHS-PT); LOCAL-MEHT; NG239 via SPS",
        "description": "Cyanocobalamin 50-150 mcg (default 100) by mouth daily until the clinician ends it.",
        "phases": [
            dict(key="oral", name="Oral daily", drug=CYANO, dose_mcg=100, dose_min_mcg=50, dose_max_mcg=150,
                 route="PO", spacing="daily", end_condition="until_cause_resolved", self_administered=True,
                 source_rule="R-UK-5", evidence_tag="S"),
        ],
        "recheck_steps": [L11_STEP],
    },
]


def load_protocols(protocol_model: Any, phase_model: Any, step_model: Any) -> None:
    """Create or update the built-in protocols (idempotent; used by the data migration)."""
    for data in PROTOCOLS:
        protocol, _ = protocol_model.objects.update_or_create(
            code=data["code"],
            defaults={
                "name": data["name"],
                "rules": data["rules"],
                "source": data["source"],
                "description": data["description"],
                "is_builtin": True,
            },
        )
        for order, phase in enumerate(data["phases"]):
            phase_model.objects.update_or_create(protocol=protocol, order=order, defaults=phase)
        for step in data.get("recheck_steps", []):
            step_model.objects.update_or_create(protocol=protocol, rule=step["rule"], day=step["day"], defaults=step)


def load_recheck_steps(protocol_model: Any, step_model: Any, rules: tuple[str, ...]) -> None:
    """Create or update only the recheck steps of `rules` in the built-in protocols (idempotent; for data
    migrations that change a step without touching phases an admin may have edited)."""
    for data in PROTOCOLS:
        protocol = protocol_model.objects.filter(code=data["code"]).first()
        if protocol is None:
            continue
        for step in data.get("recheck_steps", []):
            if step["rule"] in rules:
                step_model.objects.update_or_create(
                    protocol=protocol, rule=step["rule"], day=step["day"], defaults=step
                )
