"""Periodic sweeps of the regimens app (registered in tracker/sweeps.py)."""

from __future__ import annotations

from datetime import datetime

from regimens.jobs import resume_stale_jobs
from regimens.services import regimens_extend_horizons
from tracker.sweeps import register


@register("horizons")
def extend_horizons(at: datetime) -> dict[str, int]:
    """RULES "Scheduling semantics": lifelong phases are planned at least 12 months ahead and
    clinician-ended phases 14 days ahead; this extends both as time passes."""
    return regimens_extend_horizons(at=at)


@register("horizons", once=True)
def horizons_once(at: datetime) -> dict[str, int]:
    """Once per run, after the shards: a large calendar change's re-plan job whose worker stopped goes on
    (regimens/jobs.py)."""
    return resume_stale_jobs(at)
