"""Celery tasks of the shared plumbing: every periodic sweep runs through `run_sweep`.

Celery beat sends `run_sweep(name)` on the schedule in settings (CELERY_BEAT_SCHEDULE); the task
calls the same function `manage.py run_sweeps` calls (tracker/sweeps.py), as of the time the
task runs. Sweeps are idempotent, so a duplicate beat message (two beats, a redelivery after the
visibility timeout) changes nothing the second time.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from tracker import sweeps

logger = logging.getLogger(__name__)


@shared_task(name="tracker.run_sweep", acks_late=True)
def run_sweep(name: str) -> dict[str, int]:
    """Run sweep `name` now, unless a run of it is still going (sweeps.sweep_lock): a first monitoring run
    after an outage may outlast the beat period, and the next beat must not start a second one beside it."""
    with sweeps.sweep_lock(name) as held:
        if not held:
            logger.info("sweep %s is still running elsewhere: this run is skipped", name)
            return {"skipped_running": 1}
        return sweeps.run(name, timezone.now())
