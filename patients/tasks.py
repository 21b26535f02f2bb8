"""Celery tasks of the patients app: a large lab CSV import (patients/labs/jobs.py)."""

from __future__ import annotations

from celery import shared_task

from patients.labs.jobs import run_import_job


@shared_task(name="patients.import_lab_job")
def import_lab_job(job_id: int) -> str:
    # Acknowledged on receipt (not acks_late): a redelivery after a worker died mid-import would find the job
    # "running" and do nothing anyway (jobs.run_import_job claims only queued jobs).
    return run_import_job(int(job_id))
