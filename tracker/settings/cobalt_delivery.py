"""COBALT settings of the delivery work, merged into settings.COBALT by tracker/settings/base.py.

Each entry: the RULES.md rule it comes from, and an env override COBALT_<KEY>. [P] numbers are
RULES.md proposals awaiting clinical sign-off (RULES.md §9).
"""

from __future__ import annotations

import environ

env = environ.Env()

SETTINGS: dict[str, object] = {}
