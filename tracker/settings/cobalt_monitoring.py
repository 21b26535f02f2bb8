"""COBALT settings of the monitoring work, merged into settings.COBALT by tracker/settings/base.py.

Each entry: the RULES.md rule it comes from, and an env override COBALT_<KEY>. [P] numbers are
RULES.md proposals awaiting clinical sign-off (RULES.md §9). Windows are "first,last" day since T0,
inclusive (e.g. COBALT_RULES_A_H2_WINDOW=11,17).
"""

from __future__ import annotations

import environ

env = environ.Env()


def _window(key: str, first: int, last: int) -> tuple[int, int]:
    values = env.list(f"COBALT_{key}", cast=int, default=[first, last])
    return int(values[0]), int(values[1])


SETTINGS: dict[str, object] = {
    # --- §3.3-§3.6 response rules (monitoring/rules.py RuleSettings) ---
    # RULES A-H2 [P]: day 14 ± 3; Hb rise below this (g/L) over baseline.
    "RULES_A_H2_WINDOW": _window("RULES_A_H2_WINDOW", 11, 17),
    "RULES_A_H2_MIN_RISE": env.int("COBALT_RULES_A_H2_MIN_RISE", default=10),
    # RULES A-H3 [P]: day 28 ± 4; rise < 20 g/L MEDIUM, < 10 g/L HIGH.
    "RULES_A_H3_WINDOW": _window("RULES_A_H3_WINDOW", 24, 32),
    "RULES_A_H3_MIN_RISE": env.int("COBALT_RULES_A_H3_MIN_RISE", default=20),
    "RULES_A_H3_HIGH_BELOW_RISE": env.int("COBALT_RULES_A_H3_HIGH_BELOW_RISE", default=10),
    # RULES A-H5 [P]: a fall of >= 20 g/L from the previous Hb, or Hb < 70 g/L.
    "RULES_A_H5_DROP": env.int("COBALT_RULES_A_H5_DROP", default=20),
    "RULES_A_H5_FLOOR": env.int("COBALT_RULES_A_H5_FLOOR", default=70),
    # RULES A-P1 [P]: day 7-10; HIGH if still < 50 x10^9/L.
    "RULES_A_P1_WINDOW": _window("RULES_A_P1_WINDOW", 7, 10),
    "RULES_A_P1_HIGH_BELOW": env.int("COBALT_RULES_A_P1_HIGH_BELOW", default=50),
    # RULES A-P2 [P]: day 14 ± 2.
    "RULES_A_P2_WINDOW": _window("RULES_A_P2_WINDOW", 12, 16),
    # RULES A-P3 [P]: platelets < 20 x10^9/L or a fall >= 30 % (given in percent).
    "RULES_A_P3_FLOOR": env.int("COBALT_RULES_A_P3_FLOOR", default=20),
    "RULES_A_P3_FALL_PERCENT": env.int("COBALT_RULES_A_P3_FALL_PERCENT", default=30),
    # RULES A-P4 [P]: "day 28", read as day 28 ± 4 (monitoring/rules.py).
    "RULES_A_P4_WINDOW": _window("RULES_A_P4_WINDOW", 24, 32),
    # RULES A-L1 [P]: baseline LDH > 2 x ULN and a day 7 ± 2 fall < 50 % (given in percent).
    "RULES_A_L1_BASELINE_ULN_MULTIPLE": env.int("COBALT_RULES_A_L1_BASELINE_ULN_MULTIPLE", default=2),
    "RULES_A_L1_MIN_FALL_PERCENT": env.int("COBALT_RULES_A_L1_MIN_FALL_PERCENT", default=50),
    "RULES_A_L1_WINDOW": _window("RULES_A_L1_WINDOW", 5, 9),
    # RULES A-L2 [P]: day 28 ± 4.
    "RULES_A_L2_WINDOW": _window("RULES_A_L2_WINDOW", 24, 32),
    # RULES §3.6 [P]: suppress A-H2..A-H4 this many days after a transfusion.
    "RULES_TRANSFUSION_SUPPRESSION_DAYS": env.int("COBALT_RULES_TRANSFUSION_SUPPRESSION_DAYS", default=14),
    # --- §4 safety rules evaluated by monitoring ---
    # RULES S-4 [P]: maintenance dose overdue by more than N days -> MEDIUM / HIGH.
    "OVERDUE_MEDIUM_AFTER_DAYS": env.int("COBALT_OVERDUE_MEDIUM_AFTER_DAYS", default=14),
    "OVERDUE_HIGH_AFTER_DAYS": env.int("COBALT_OVERDUE_HIGH_AFTER_DAYS", default=28),
    # RULES S-4 [P]: with neurological history.
    "OVERDUE_NEURO_MEDIUM_AFTER_DAYS": env.int("COBALT_OVERDUE_NEURO_MEDIUM_AFTER_DAYS", default=7),
    "OVERDUE_NEURO_HIGH_AFTER_DAYS": env.int("COBALT_OVERDUE_NEURO_HIGH_AFTER_DAYS", default=14),
    # RULES S-6(a) [P]: neurological symptoms recorded and no B12 dose within this many hours -> HIGH.
    "NEURO_TREATMENT_DELAY_HOURS": env.int("COBALT_NEURO_TREATMENT_DELAY_HOURS", default=24),
    # RULES S-9 / L-1 [P]: baseline Hb below this (g/L) -> potassium within 48 h.
    "POTASSIUM_CHECK_HB_BELOW": env.int("COBALT_POTASSIUM_CHECK_HB_BELOW", default=80),
    # RULES S-15 -> L-9 [P]: the ferritin + folate task is due within this many days (§3.2: MEDIUM = 7 days).
    "S15_TASK_WINDOW_DAYS": env.int("COBALT_S15_TASK_WINDOW_DAYS", default=7),
    # RULES §1.3 rule 3 [P]: no review within this many days (of phase start or the last review) -> MEDIUM.
    "NEURO_REVIEW_MEDIUM_AFTER_DAYS": env.int("COBALT_NEURO_REVIEW_MEDIUM_AFTER_DAYS", default=21),
    # RULES §1.3 rule 3 [P]: phase still open at 6 weeks (42 days) and again at 12 weeks (84 days) without a
    # specialist note (a review with a note) -> HIGH.
    "NEURO_REVIEW_HIGH_AT_DAYS": env.list("COBALT_NEURO_REVIEW_HIGH_AT_DAYS", cast=int, default=[42, 84]),
}
