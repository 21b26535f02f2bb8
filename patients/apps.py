from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"

    def ready(self) -> None:
        from patients import checks, listeners  # noqa: F401  (register the system checks and event listeners)
