from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"

    def ready(self) -> None:
        from patients import listeners  # noqa: F401  (connects the sign-in receivers)
