"""COBALT settings of the lab-recheck plan (RULES §2), merged into settings.COBALT by tracker/settings/base.py.

Each entry: the RULES rule it comes from, and an env override COBALT_<KEY>. [P] numbers are RULES proposals
awaiting clinical sign-off (RULES §9); the defaults are RULES' own. Days count from T0 (the first dose given);
"plus_minus" is the half-width of a recheck's window (day 14 ± 2 is the window 12-16). The schedule engine reads
them as regimens.schedule.RecheckTimes (regimens/services/planning.py) and checks them at start-up
(monitoring/checks.py, cobalt.E005). A change applies to each regimen's next re-plan.
"""

from __future__ import annotations

import environ

env = environ.Env()

SETTINGS: dict[str, object] = {
    # RULES §2 L-4 (baseline platelets < LLN), "frequency is [P]": days 7-10, then day 14 ± 2, then weekly until
    # >= 150 x10^9/L. The first window is "first,last" (due on its first day); the later fixed days and the
    # repeating checks (from the last fixed day + the interval) share the ± (RULES gives ± 2 for day 14).
    "RECHECK_L4_FIRST_WINDOW": env.list("COBALT_RECHECK_L4_FIRST_WINDOW", cast=int, default=[7, 10]),
    "RECHECK_L4_AT_DAYS": env.list("COBALT_RECHECK_L4_AT_DAYS", cast=int, default=[14]),
    "RECHECK_L4_EVERY_DAYS": env.int("COBALT_RECHECK_L4_EVERY_DAYS", default=7),
    "RECHECK_L4_PLUS_MINUS_DAYS": env.int("COBALT_RECHECK_L4_PLUS_MINUS_DAYS", default=2),
    # RULES §2 L-4b [P]: platelets < 50 x10^9/L (or the pseudo-TMA pattern, S-3) -> platelets + Hb + LDH every
    # 24-72 h until rising, read as due every 2 days ± 1 from day 2.
    "RECHECK_L4B_PLATELETS_BELOW": env.int("COBALT_RECHECK_L4B_PLATELETS_BELOW", default=50),
    "RECHECK_L4B_EVERY_DAYS": env.int("COBALT_RECHECK_L4B_EVERY_DAYS", default=2),
    "RECHECK_L4B_PLUS_MINUS_DAYS": env.int("COBALT_RECHECK_L4B_PLUS_MINUS_DAYS", default=1),
    # RULES §2 L-5 (baseline haemolysis markers abnormal), "interval is [P]": day 7 ± 2 and day 14 ± 2, then
    # every 2 weeks (± 2) until normal.
    "RECHECK_L5_AT_DAYS": env.list("COBALT_RECHECK_L5_AT_DAYS", cast=int, default=[7, 14]),
    "RECHECK_L5_EVERY_DAYS": env.int("COBALT_RECHECK_L5_EVERY_DAYS", default=14),
    "RECHECK_L5_PLUS_MINUS_DAYS": env.int("COBALT_RECHECK_L5_PLUS_MINUS_DAYS", default=2),
    # RULES §2 L-6 (baseline anaemic), "timepoints are [P]": Hb on day 14 ± 3 and day 28 ± 3.
    "RECHECK_L6_AT_DAYS": env.list("COBALT_RECHECK_L6_AT_DAYS", cast=int, default=[14, 28]),
    "RECHECK_L6_PLUS_MINUS_DAYS": env.int("COBALT_RECHECK_L6_PLUS_MINUS_DAYS", default=3),
    # RULES §2 L-12 [P] (irreversible causes): annual clinical review ± CBC, on each anniversary of T0; the
    # ± 30 days is Cobalt's window (RULES gives none).
    "RECHECK_L12_EVERY_YEARS": env.int("COBALT_RECHECK_L12_EVERY_YEARS", default=1),
    "RECHECK_L12_PLUS_MINUS_DAYS": env.int("COBALT_RECHECK_L12_PLUS_MINUS_DAYS", default=30),
}
