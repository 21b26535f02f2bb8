"""Lab histories for the demo patients (used by `manage.py seed_demo`).

Each story is a list of panels on days relative to T0 (the first dose given, RULES §2); day -2
is the baseline sample taken before treatment. Panels dated after today are left out, so a patient
who started recently has only their first results. The values are invented for the demo and chosen
so that the stories show what the monitoring does:

- responding: the expected trajectory of RULES §3.1; no alert.
- slow_hemoglobin: Hb rises too little at day 14 and 28 and is still low at week 8 (A-H2, A-H3, A-H4).
- pseudo_tma: the pattern of RULES S-3 at baseline, LDH falls too slowly by day 7 (A-L1).
- platelets_slow: platelets not rising by day 8 and still low at day 14 (A-P1, A-P2), normal by day 28.
- hemoglobin_falling: Hb falls by 22 g/L between day 7 and day 14 (A-H5).

Everything is entered through `patients.labs.services.lab_panel_create`, the service the API uses, so
the alerts open exactly as they would for a nurse entering the same results.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from patients.labs.services import ResultInput, lab_panel_create
from patients.models import Patient
from regimens.selectors import current_t0

Panel = tuple[int, dict[str, tuple[Any, str]]]

STORIES: dict[str, list[Panel]] = {
    "responding": [
        (
            -2,
            {
                "hemoglobin": (92, "g/L"),
                "mcv": (114, "fL"),
                "platelets": (135, "10^9/L"),
                "reticulocytes_pct": ("0.8", "%"),
                "b12_total": (95, "ng/L"),
                "folate": ("6.5", "ug/L"),
                "ferritin": (80, "ug/L"),
            },
        ),
        (7, {"reticulocytes_pct": ("4.5", "%"), "platelets": (190, "10^9/L"), "hemoglobin": (100, "g/L")}),
        (14, {"hemoglobin": ("11.4", "g/dL"), "platelets": (230, "10^9/L")}),
        (28, {"hemoglobin": (128, "g/L")}),
        (56, {"hemoglobin": (136, "g/L"), "mcv": (94, "fL"), "platelets": (260, "10^9/L")}),
    ],
    "slow_hemoglobin": [
        (
            -2,
            {
                "hemoglobin": (88, "g/L"),
                "mcv": (118, "fL"),
                "platelets": (210, "10^9/L"),
                "reticulocytes_pct": ("0.9", "%"),
                "b12_total": (80, "ng/L"),
                "folate": ("5.1", "ug/L"),
            },
        ),
        (7, {"reticulocytes_pct": ("3.8", "%")}),
        (14, {"hemoglobin": (92, "g/L")}),
        (28, {"hemoglobin": (101, "g/L")}),
        (56, {"hemoglobin": (112, "g/L"), "mcv": (104, "fL")}),
    ],
    "pseudo_tma": [
        (
            -2,
            {
                "hemoglobin": (68, "g/L"),
                "platelets": (42, "10^9/L"),
                "ldh": (2900, "U/L"),
                "haptoglobin": (0, "g/L"),
                "bilirubin_indirect": (38, "umol/L"),
                "schistocytes": ("present", ""),
                "b12_total": (60, "ng/L"),
                "reticulocytes_pct": ("0.5", "%"),
                "mcv": (121, "fL"),
                "creatinine": (88, "umol/L"),
                "inr": ("1.1", "ratio"),
                "adamts13_activity": (64, "%"),
            },
        ),
        (3, {"platelets": (55, "10^9/L"), "ldh": (2400, "U/L"), "potassium": ("3.6", "mmol/L")}),
        (
            7,
            {
                "ldh": (1900, "U/L"),
                "platelets": (95, "10^9/L"),
                "reticulocytes_pct": ("6.0", "%"),
                "hemoglobin": (76, "g/L"),
            },
        ),
        (14, {"platelets": (168, "10^9/L"), "hemoglobin": (92, "g/L"), "ldh": (600, "U/L")}),
        (28, {"hemoglobin": (112, "g/L"), "ldh": (210, "U/L"), "platelets": (240, "10^9/L")}),
    ],
    "platelets_slow": [
        (
            -2,
            {
                "hemoglobin": (104, "g/L"),
                "platelets": (88, "10^9/L"),
                "mcv": (108, "fL"),
                "b12_total": (120, "ng/L"),
                "reticulocytes_pct": ("1.0", "%"),
            },
        ),
        (8, {"platelets": (84, "10^9/L"), "reticulocytes_pct": ("2.9", "%")}),
        (14, {"platelets": (120, "10^9/L"), "hemoglobin": (118, "g/L")}),
        (28, {"platelets": (160, "10^9/L"), "hemoglobin": (131, "g/L")}),
    ],
    "hemoglobin_falling": [
        (
            -2,
            {
                "hemoglobin": (98, "g/L"),
                "platelets": (180, "10^9/L"),
                "mcv": (110, "fL"),
                "b12_total": (110, "ng/L"),
                "reticulocytes_pct": ("0.9", "%"),
            },
        ),
        (7, {"reticulocytes_pct": ("3.5", "%"), "hemoglobin": (101, "g/L")}),
        (14, {"hemoglobin": (79, "g/L")}),
    ],
}
# The order stories are handed out in: most demo patients respond as expected.
ROTATION = (
    "responding",
    "slow_hemoglobin",
    "responding",
    "pseudo_tma",
    "platelets_slow",
    "responding",
    "hemoglobin_falling",
)
LABS = ("RVH Haematology", "St Mary's Pathology")


def story_for(index: int) -> str:
    return ROTATION[index % len(ROTATION)]


def add_lab_history(*, patient: Patient, index: int, user: Any, today: date) -> int:
    """Enter the patient's story up to today; returns how many results were stored."""
    t0 = current_t0(patient)  # RULES §10 V-1: the stories are told from the current regimen's T0
    if t0 is None:
        return 0
    zone = ZoneInfo(patient.timezone)
    stored = 0
    for day, values in STORIES[story_for(index)]:
        on = t0 + timedelta(days=day)
        if on >= today:
            break
        collected = datetime.combine(on, time(8, 40), tzinfo=zone)
        results = [ResultInput(analyte=code, value=value, unit=unit) for code, (value, unit) in values.items()]
        lab_panel_create(
            patient=patient,
            collected_at=collected,
            reported_at=collected + timedelta(hours=6),
            results=results,
            lab=LABS[index % len(LABS)],
            entered_by=user,
        )
        stored += len(results)
    return stored
