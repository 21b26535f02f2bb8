"""COBALT settings of the safety work, merged into settings.COBALT by tracker/settings/base.py.

Each entry: the RULES rule it comes from, and an env override COBALT_<KEY>. [P] numbers are
RULES proposals awaiting clinical sign-off (RULES §9).
"""

from __future__ import annotations

import environ

env = environ.Env()

SETTINGS: dict[str, object] = {
    # RULES S-2 [P]: an IM dose warns when the most recent platelet count is below this (×10⁹/L).
    "SAFETY_S2_PLATELETS_BELOW": env.int("COBALT_SAFETY_S2_PLATELETS_BELOW", default=50),
    # RULES S-2 [P]: ... or when no platelet count is this recent (days before the dose) ...
    "SAFETY_S2_LOOKBACK_DAYS": env.int("COBALT_SAFETY_S2_LOOKBACK_DAYS", default=7),
    # RULES S-2 [P]: ... while the last count was below this (×10⁹/L).
    "SAFETY_S2_LOOKBACK_PLATELETS_BELOW": env.int("COBALT_SAFETY_S2_LOOKBACK_PLATELETS_BELOW", default=100),
}
