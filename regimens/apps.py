from __future__ import annotations

from django.apps import AppConfig


class RegimensConfig(AppConfig):
    name = "regimens"

    def ready(self) -> None:
        # Register the event listeners (tracker/events.py): a clinic calendar change re-plans doses.
        from regimens import listeners  # noqa: F401
