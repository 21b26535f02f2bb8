from __future__ import annotations

from django.apps import AppConfig


class RegimensConfig(AppConfig):
    name = "regimens"
