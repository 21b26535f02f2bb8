from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CobaltAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Cobalt's admin site (tracker/admin_site.py: superusers only)."""

    default = False  # tracker's own config is TrackerConfig
    default_site = "tracker.admin_site.CobaltAdminSite"


class TrackerConfig(AppConfig):
    default = True
    name = "tracker"
    verbose_name = "Cobalt"

    def ready(self) -> None:
        from tracker import logging as cobalt_logging
        from tracker.api import install_ascii_numbers, install_choice_messages

        install_choice_messages()
        install_ascii_numbers()
        # Calendar feed, unsubscribe and portal sign-in addresses carry a secret: never log it.
        cobalt_logging.install()

        from tracker.auth import connect_revocation
        from tracker.two_factor import connect as connect_second_factor

        connect_revocation()
        connect_second_factor()
