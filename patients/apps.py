from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"

    def ready(self) -> None:
        from django.conf import settings

        from patients import listeners  # noqa: F401  (connects the sign-in receivers)
        from patients.labs import reference_ranges

        # The [P] fallback ULNs (RULES §3.3 A-H6 MCV, §8 Q4 MMA) are settings; the pure reference_ranges module
        # reads them through this source at each lookup, so a changed setting (or override_settings) applies.
        reference_ranges.use_fallback_ulns(
            lambda: {"mcv": settings.COBALT.get("MCV_FALLBACK_ULN"), "mma": settings.COBALT.get("MMA_FALLBACK_ULN")}
        )
