from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """The rules that read results and raise alerts. It reads the patients' and regimens' rows and writes
    notifications' alerts; its one table is the queue of patients whose rules a worker will run
    (monitoring/queue.py)."""

    name = "monitoring"

    def ready(self) -> None:
        # Register the system checks (B12 cut-off settings) and the event listeners (tracker/events.py).
        from monitoring import checks, listeners  # noqa: F401
