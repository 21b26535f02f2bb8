"""COBALT settings of the monitoring work, merged into settings.COBALT by tracker/settings/base.py.

Each entry: the RULES rule it comes from (docs/clinical-reference.md), and an env override COBALT_<KEY>.
[P] numbers are proposals awaiting clinical sign-off (RULES §9). Windows are "first,last" day since T0,
inclusive (e.g. COBALT_RULES_A_H2_WINDOW=11,17).
"""

from __future__ import annotations

import environ

env = environ.Env()


# The response-rule numbers (RULES §3.3-§3.6, S-6(a), S-9) are defined once, with their RULES ids, in
# monitoring/rules/base.py RuleSettings; the environment only overrides them. Windows are "first,last"
# days since T0; *_PERCENT values are percentages.
RULE_OVERRIDE_KEYS = (
    "RULES_A_H2_WINDOW",
    "RULES_A_H2_MIN_RISE",
    "RULES_A_H3_WINDOW",
    "RULES_A_H3_MIN_RISE",
    "RULES_A_H3_HIGH_BELOW_RISE",
    "RULES_A_H5_DROP",
    "RULES_A_H5_FLOOR",
    "RULES_A_P1_WINDOW",
    "RULES_A_P1_HIGH_BELOW",
    "RULES_A_P2_WINDOW",
    "RULES_A_P3_FLOOR",
    "RULES_A_P3_FALL_PERCENT",
    "RULES_A_P4_WINDOW",
    "RULES_A_L1_BASELINE_ULN_MULTIPLE",
    "RULES_A_L1_MIN_FALL_PERCENT",
    "RULES_A_L1_WINDOW",
    "RULES_A_L2_WINDOW",
    "RULES_TRANSFUSION_SUPPRESSION_DAYS",
    "POTASSIUM_CHECK_HB_BELOW",
    "NEURO_TREATMENT_DELAY_HOURS",
    "S3_INPUTS_WITHIN_DAYS",
)


def _overrides() -> dict[str, str]:
    values = {key: env.str(f"COBALT_{key}", default="") for key in RULE_OVERRIDE_KEYS}
    return {key: value for key, value in values.items() if value}


def _lab_limits(raw: str) -> dict[str, str]:
    """ "Lab A=0.1;Lab B=0.08" -> {"Lab A": "0.1", "Lab B": "0.08"} (checked by monitoring/checks.py)."""
    pairs = (item.split("=", 1) for item in raw.split(";") if "=" in item)
    return {lab.strip(): limit.strip() for lab, limit in pairs}


SETTINGS: dict[str, object] = {
    "RULE_OVERRIDES": _overrides(),
    # --- where the rules run after a write (not clinical) ---
    # True: an API write (a result, a dose, a fact) commits with a durable "evaluate this patient" marker and a
    # Celery worker runs the rules (monitoring/queue.py), so the request is answered at the speed of the write; the
    # web pages still run them before answering (tracker.middleware.AtOnceMiddleware). False: every write runs
    # them in its own request, after its commit (the test suite's setting).
    "EVALUATE_IN_WORKER": env.bool("COBALT_EVALUATE_IN_WORKER", default=True),
    # A marker still there this many seconds after its write (its task was lost: a worker killed mid-task, a
    # broker restart) is evaluated by the "evaluations" sweep (beat: COBALT_SWEEP_EVALUATIONS_SECONDS).
    "EVALUATION_RETRY_AFTER_SECONDS": env.int("COBALT_EVALUATION_RETRY_AFTER_SECONDS", default=60),
    # --- §4 safety rules evaluated by monitoring ---
    # RULES S-4 [P]: maintenance dose overdue by more than N days -> MEDIUM / HIGH.
    "OVERDUE_MEDIUM_AFTER_DAYS": env.int("COBALT_OVERDUE_MEDIUM_AFTER_DAYS", default=14),
    "OVERDUE_HIGH_AFTER_DAYS": env.int("COBALT_OVERDUE_HIGH_AFTER_DAYS", default=28),
    # RULES S-4 [P]: with neurological history.
    "OVERDUE_NEURO_MEDIUM_AFTER_DAYS": env.int("COBALT_OVERDUE_NEURO_MEDIUM_AFTER_DAYS", default=7),
    "OVERDUE_NEURO_HIGH_AFTER_DAYS": env.int("COBALT_OVERDUE_NEURO_HIGH_AFTER_DAYS", default=14),
    # RULES §10 V-5 [P] (S-4 for loading doses): a loading dose of the neurological loading phase (R-UK-2), or of
    # a patient with neurological history, overdue by more than N days -> HIGH.
    "OVERDUE_NEURO_LOADING_HIGH_AFTER_DAYS": env.int("COBALT_OVERDUE_NEURO_LOADING_HIGH_AFTER_DAYS", default=2),
    # RULES §10 V-9 [P] (R-US-1 gate): a regimen waiting at a gate more than N days after the last dose of the
    # phase before it -> gate_pending HIGH.
    "GATE_PENDING_AFTER_DAYS": env.int("COBALT_GATE_PENDING_AFTER_DAYS", default=2),
    # RULES S-15 -> L-9 [P]: the ferritin + folate task is due within this many days (§3.2: MEDIUM = 7 days).
    "S15_TASK_WINDOW_DAYS": env.int("COBALT_S15_TASK_WINDOW_DAYS", default=7),
    # RULES §1.3 rule 3 [P]: no review within this many days (of phase start or the last review) -> MEDIUM.
    "NEURO_REVIEW_MEDIUM_AFTER_DAYS": env.int("COBALT_NEURO_REVIEW_MEDIUM_AFTER_DAYS", default=21),
    # RULES §1.3 rule 3 [P]: phase still open at 6 weeks (42 days) and again at 12 weeks (84 days) without a
    # specialist note (a review with a note) -> HIGH.
    "NEURO_REVIEW_HIGH_AT_DAYS": env.list("COBALT_NEURO_REVIEW_HIGH_AT_DAYS", cast=int, default=[42, 84]),
    # RULES §6.1 PLASMIC "haptoglobin undetectable": below the reporting lab's detection limit (g/L). RULES
    # gives no number (§5.2: haptoglobin is lab-specific [U]), so there is no default: without a limit only a
    # result entered as 0 (or as "<x") counts, as before. Per lab, e.g. "St Mary's Pathology=0.1;Other=0.08";
    # the default applies to the other labs. Needs clinical sign-off.
    "HAPTOGLOBIN_DETECTION_LIMIT": env.str("COBALT_HAPTOGLOBIN_DETECTION_LIMIT", default=""),
    "HAPTOGLOBIN_LAB_DETECTION_LIMITS": _lab_limits(env.str("COBALT_HAPTOGLOBIN_LAB_DETECTION_LIMITS", default="")),
    # RULES §10 V-14 [P]: the nurse who recorded a dose may mark it entered in error within this many days of
    # recording it; after that only a clinician may.
    "ENTERED_IN_ERROR_RECORDER_DAYS": env.int("COBALT_ENTERED_IN_ERROR_RECORDER_DAYS", default=7),
}
