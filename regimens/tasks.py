"""Celery tasks of the regimens app (found by Celery's autodiscovery): a large calendar change's re-plan, defined
beside the job it runs (regimens/jobs.py)."""

from __future__ import annotations

from regimens.jobs import replan_clinic_job

__all__ = ["replan_clinic_job"]
