from __future__ import annotations

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Cobalt"

    def ready(self) -> None:
        from tracker import logging as cobalt_logging
        from tracker.api import install_choice_messages

        install_choice_messages()
        # Calendar feed, unsubscribe and portal sign-in addresses carry a secret: never log it.
        cobalt_logging.install()
