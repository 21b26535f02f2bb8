"""System checks of the monitoring settings: a mistyped cut-off set, fallback limit or recheck time stops the
start, not a request."""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from patients.labs.reference_ranges import B12_CUTOFF_SETS, fallback_uln_problem
from regimens.services.planning import recheck_times


@register()
def b12_cutoff_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    known = ", ".join(B12_CUTOFF_SETS)
    errors: list[CheckMessage] = []
    if settings.COBALT["B12_CUTOFFS"] not in B12_CUTOFF_SETS:
        errors.append(
            Error(
                f"COBALT_B12_CUTOFFS={settings.COBALT['B12_CUTOFFS']!r} is not a cut-off set; use one of {known}.",
                id="cobalt.E001",
            )
        )
    for lab, name in settings.COBALT["B12_LAB_CUTOFFS"].items():
        if name not in B12_CUTOFF_SETS:
            errors.append(
                Error(
                    f"COBALT_B12_LAB_CUTOFFS: {lab!r} uses {name!r}, not a cut-off set; use one of {known}.",
                    id="cobalt.E002",
                )
            )
    return errors


@register()
def haptoglobin_detection_limit_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """COBALT_HAPTOGLOBIN_DETECTION_LIMIT and COBALT_HAPTOGLOBIN_LAB_DETECTION_LIMITS are g/L numbers >= 0."""
    given = {"COBALT_HAPTOGLOBIN_DETECTION_LIMIT": settings.COBALT.get("HAPTOGLOBIN_DETECTION_LIMIT", "")}
    for lab, limit in settings.COBALT.get("HAPTOGLOBIN_LAB_DETECTION_LIMITS", {}).items():
        given[f"COBALT_HAPTOGLOBIN_LAB_DETECTION_LIMITS ({lab!r})"] = limit
    errors: list[CheckMessage] = []
    for name, raw in given.items():
        if str(raw).strip() == "":
            continue
        try:
            ok = Decimal(str(raw).strip()).is_finite() and Decimal(str(raw).strip()) >= 0
        except InvalidOperation:
            ok = False
        if not ok:
            message = f"{name}={raw!r} is not a haptoglobin limit in g/L (a number, 0 or more)."
            errors.append(Error(message, id="cobalt.E003"))
    return errors


@register()
def fallback_uln_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """COBALT_MCV_FALLBACK_ULN (RULES §3.3 A-H6 [P], 100 fL) and COBALT_MMA_FALLBACK_ULN (§8 Q4 [P], 400 nmol/L):
    numbers above the default LLN (MCV 80 fL) or above 0 (MMA)."""
    errors: list[CheckMessage] = []
    for key, analyte in (("MCV_FALLBACK_ULN", "mcv"), ("MMA_FALLBACK_ULN", "mma")):
        problem = fallback_uln_problem(analyte, settings.COBALT.get(key))
        if problem:
            errors.append(Error(f"COBALT_{key}: {problem}.", id="cobalt.E004"))
    return errors


@register()
def recheck_time_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The [P] lab-recheck times (RULES §2 L-4, L-4b, L-5, L-6, L-12; COBALT_RECHECK_*) make a plan: windows
    open after T0, fixed days rise, intervals are at least 1 day (regimens.schedule.RecheckTimes.problems); the
    L-4b platelet trigger is above 0."""
    try:
        problems = recheck_times().problems()
    except (TypeError, ValueError) as exc:
        problems = [f"COBALT_RECHECK_L4_FIRST_WINDOW is not two days 'first,last' ({exc})"]
    if int(settings.COBALT["RECHECK_L4B_PLATELETS_BELOW"]) <= 0:
        problems.append("COBALT_RECHECK_L4B_PLATELETS_BELOW is not above 0")
    return [Error(f"Lab-recheck settings: {_setting_names(problem)}.", id="cobalt.E005") for problem in problems]


def _setting_names(problem: str) -> str:
    """RecheckTimes names its fields (l4_at_days); the operator knows them as COBALT_RECHECK_L4_AT_DAYS."""

    def env_name(match: re.Match[str]) -> str:
        return f"COBALT_RECHECK_{match.group(0).upper()}"

    return re.sub(r"\bl\d+b?_[a-z_]+", env_name, problem)


@register()
def retired_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A setting that is no longer read, still set in the environment: it would look as if it changed something."""
    if os.environ.get("COBALT_NEURO_REVIEW_EVERY_DAYS") is None:
        return []
    message = (
        "COBALT_NEURO_REVIEW_EVERY_DAYS is set but no longer read: the neuro loading phase's review interval "
        "(RULES §1.3) is its protocol phase's 'review every' field, which a clinic admin sets on the clinic's copy."
    )
    return [Warning(message, id="cobalt.W001")]
