"""Celery tasks of the patients app (found by Celery's autodiscovery): a large lab CSV import, defined beside
the job it runs (patients/labs/jobs.py)."""

from __future__ import annotations

from patients.labs.jobs import import_lab_job

__all__ = ["import_lab_job"]
