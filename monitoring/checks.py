"""System checks of the monitoring settings: a mistyped cut-off set stops the start, not a request."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from patients.labs.reference_ranges import B12_CUTOFF_SETS


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
