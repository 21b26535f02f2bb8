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

A job whose worker died (terminated, out of memory) would stay "running" with the clinic half re-planned: the
job keeps a heartbeat (`heartbeat_at`: queued, claimed, each batch), and the horizons sweep queues again every
job queued or running with no heartbeat for COBALT_REPLAN_JOB_STALE_SECONDS (`resume_stale_jobs`); one claimed
MAX_ATTEMPTS times already is failed instead, with a message, for a person to look at and resume.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from patients.models import Clinic
from regimens.models import Regimen, RegimenStatus, ReplanJob, ReplanJobStatus
from regimens.services.planning import replan_batch_size, replan_regimens
from tracker.errors import ConflictError

logger = logging.getLogger(__name__)


# A job claimed this often that still stops without a word (its worker killed each time) is failed, not retried.
MAX_ATTEMPTS = 3


def sync_max_regimens() -> int:
    return int(settings.COBALT.get("CALENDAR_SYNC_MAX_REGIMENS", 200))


def stale_seconds() -> int:
    return int(settings.COBALT.get("REPLAN_JOB_STALE_SECONDS", 600))


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
    now = timezone.now()
    claimed = ReplanJob.objects.filter(pk=job_id, status=ReplanJobStatus.QUEUED).update(
        status=ReplanJobStatus.RUNNING, started_at=now, heartbeat_at=now, error_message="", attempts=F("attempts") + 1
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
                    # Regimens started during the job (planned on the new calendar already) were counted too.
                    ReplanJob.objects.filter(pk=job_id).update(
                        status=ReplanJobStatus.DONE,
                        finished_at=timezone.now(),
                        regimens_total=Greatest("regimens_total", "regimens_done"),
                    )
                    return "done"
                replan_regimens(ids, cause=job.cause, batch_size=size, audit_batch=job.audit_batch)
                ReplanJob.objects.filter(pk=job_id).update(
                    last_regimen_id=ids[-1], regimens_done=F("regimens_done") + len(ids), heartbeat_at=timezone.now()
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
        locked.heartbeat_at = timezone.now()
        locked.save(update_fields=["status", "error_message", "finished_at", "heartbeat_at"])
        job_id = locked.pk
        transaction.on_commit(lambda: dispatch(job_id))
    return locked


def resume_stale_jobs(at: datetime) -> dict[str, int]:
    """Queue again (once this transaction commits) every job queued or running with no heartbeat for
    stale_seconds() at `at`; fail those already claimed MAX_ATTEMPTS times. Compare-and-set on the heartbeat: a
    worker that reports in first keeps its job."""
    stale = ReplanJob.objects.filter(
        status__in=[ReplanJobStatus.QUEUED, ReplanJobStatus.RUNNING],
        heartbeat_at__lt=at - timedelta(seconds=stale_seconds()),
    )
    failed = stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=ReplanJobStatus.FAILED,
        error_message=f"stopped {MAX_ATTEMPTS} times without finishing (its worker stopped each time); what it "
        "re-planned is kept, resume it to finish",
        finished_at=at,
    )
    ids = list(stale.values_list("pk", flat=True))
    resumed = ReplanJob.objects.filter(pk__in=ids).update(status=ReplanJobStatus.QUEUED, heartbeat_at=at)
    for job_id in ids:
        transaction.on_commit(partial(dispatch, job_id))
    counts = {"replan_jobs_resumed": resumed, "replan_jobs_failed": failed}
    return {name: n for name, n in counts.items() if n}  # nothing to say: the sweep's summary stays as it was


@shared_task(name="regimens.replan_clinic_job")
def replan_clinic_job(job_id: int) -> str:
    return run_replan_job(int(job_id))
