"""Large clinic calendar changes re-planned as a Celery job (issue 16): no request waits for 20,000 doses.

A calendar change (patients.services.clinic_update_calendar) is saved in its request's transaction. When
the clinic has more active regimens than settings.COBALT["CALENDAR_SYNC_MAX_REGIMENS"], its listener
(regimens/listeners.py) records a `ReplanJob` instead of re-planning at once and hands it to a worker once
the change commits; the API answers 202 with the job's URL and the page /calendar/replan/<id>/ shows its
progress. The worker re-plans the clinic's active regimens in id order, COBALT_REPLAN_BATCH_SIZE at a time,
through the same `replan_regimens` as a synchronous change. Each batch is one transaction that also moves
the job's progress (regimens_done, last_regimen_id): a cancel or terminate stops the job between batches
with what it did committed and counted, and a resumed job (`replan_job_resume`) goes on after the last
batch it committed. Re-planning is idempotent: a batch run twice moves nothing the second time.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from patients.models import Clinic
from regimens.models import Regimen, RegimenStatus, ReplanJob, ReplanJobStatus
from regimens.services.planning import replan_batch_size, replan_regimens
from tracker.errors import ConflictError

logger = logging.getLogger(__name__)


def sync_max_regimens() -> int:
    return int(settings.COBALT.get("CALENDAR_SYNC_MAX_REGIMENS", 200))


def clinic_regimens(clinic_id: int) -> QuerySet[Regimen]:
    """The regimens a calendar change re-plans: the clinic's active ones."""
    return Regimen.objects.filter(patient__clinic_id=clinic_id, status=RegimenStatus.ACTIVE)


def replan_job_create(*, clinic: Clinic, cause: str, total: int, user: Any = None) -> ReplanJob:
    """Record a queued job (in the caller's transaction) and hand it to a worker once that commits."""
    job = ReplanJob.objects.create(
        clinic=clinic,
        cause=cause[:200],
        regimens_total=total,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    job_id = job.pk
    transaction.on_commit(lambda: dispatch(job_id))
    return job


def dispatch(job_id: int) -> None:
    try:
        replan_clinic_job.delay(job_id)
    except Exception:  # broker down: say so on the job (it can be resumed) rather than leave it queued for ever
        logger.exception("could not queue re-plan job %s", job_id)
        _fail(job_id, "could not be queued (the task queue is unavailable); resume it")


def _fail(job_id: int, message: str) -> None:
    ReplanJob.objects.filter(pk=job_id).exclude(status=ReplanJobStatus.DONE).update(
        status=ReplanJobStatus.FAILED, error_message=message[:500], finished_at=timezone.now()
    )


def run_replan_job(job_id: int) -> str:
    """The worker's part: claim the queued job, then re-plan batch after batch, each in its own transaction
    with the job's progress, until no active regimen of the clinic is left after `last_regimen_id`."""
    claimed = ReplanJob.objects.filter(pk=job_id, status=ReplanJobStatus.QUEUED).update(
        status=ReplanJobStatus.RUNNING, started_at=timezone.now(), error_message=""
    )
    if not claimed:
        return "not queued"
    size = replan_batch_size()
    try:
        while True:
            with transaction.atomic():
                # The job's row lock orders two workers of one resumed job: each batch starts where the last ended.
                job = ReplanJob.objects.select_for_update().get(pk=job_id)
                if job.status != ReplanJobStatus.RUNNING:
                    return "stopped"
                ids = list(
                    clinic_regimens(job.clinic_id)
                    .filter(pk__gt=job.last_regimen_id)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:size]
                )
                if not ids:
                    ReplanJob.objects.filter(pk=job_id).update(
                        status=ReplanJobStatus.DONE, finished_at=timezone.now()
                    )
                    return "done"
                replan_regimens(ids, cause=job.cause, batch_size=size, audit_batch=job.audit_batch)
                ReplanJob.objects.filter(pk=job_id).update(
                    last_regimen_id=ids[-1], regimens_done=F("regimens_done") + len(ids)
                )
    except Exception:
        logger.exception("re-plan job %s stopped", job_id)
        _fail(job_id, "stopped with an unexpected error; what it re-planned is kept, resume it to finish")
        raise


def replan_job_resume(*, job: ReplanJob) -> ReplanJob:
    """Queue a failed or stopped job again: it goes on after the last batch it committed. A job a worker is
    still running is resumed harmlessly (the two take turns on the job's row lock). A finished job: 409."""
    with transaction.atomic():
        locked = ReplanJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == ReplanJobStatus.DONE:
            raise ConflictError("status", "the job is done; there is nothing left to re-plan")
        locked.status = ReplanJobStatus.QUEUED
        locked.error_message = ""
        locked.finished_at = None
        locked.save(update_fields=["status", "error_message", "finished_at"])
        job_id = locked.pk
        transaction.on_commit(lambda: dispatch(job_id))
    return locked


@shared_task(name="regimens.replan_clinic_job")
def replan_clinic_job(job_id: int) -> str:
    return run_replan_job(int(job_id))
