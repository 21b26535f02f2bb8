from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        # Imported here, once the models are loaded, in every process (web, worker, run_sweeps): reminders
        # and staff register what the delivery worker asks of their purposes (notifications/purposes.py),
        # and staff listens for new and escalating alerts (tracker/events.py); listeners answers the apps
        # below which alerts a write opened; page_sections adds the alerts and reminders to the patient page.
        from notifications import listeners, page_sections, reminders, staff  # noqa: F401
