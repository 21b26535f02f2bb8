"""Celery tasks of the monitoring app (found by Celery's autodiscovery): a patient's rules after an API write,
defined beside the queue that sends it (monitoring/queue.py)."""

from __future__ import annotations

from monitoring.queue import evaluate_patient_task

__all__ = ["evaluate_patient_task"]
