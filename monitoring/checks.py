"""System checks of the monitoring settings: a mistyped cut-off set stops the start, not a request."""

from __future__ import annotations

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
