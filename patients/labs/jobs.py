"""Large CSV imports as a Celery job (issue 12): no request waits for 100,000 rows.

A file of more than settings.COBALT["IMPORT_SYNC_MAX_ROWS"] rows is stored as a `LabImportJob` and handed
to a worker (the task `patients.import_lab_job` below); the API answers 202 with the job's URL and the
page /labs/import/<id>/ shows its progress. The worker runs the same importer as a synchronous import
(patients/labs/importer.py), so the checks, the all-or-nothing rule and the report are the same: the
rows are checked first (the job's progress counts them), then written in one transaction. The uploaded
text is emptied when the job ends.

A job is claimed once (queued -> running): a duplicate message does nothing. A worker that dies
mid-import wrote nothing (the write is one transaction). Its job would stay "running": instead the job keeps a
heartbeat (`heartbeat_at`: queued, claimed, each progress step, the write's commit), and a job queued or
running with no heartbeat for COBALT_IMPORT_STALE_SECONDS is failed with a message that says so and that
nothing was stored (fail_if_stale when the job is read, fail_stale_jobs from the staff sweep); the file is
then uploaded again. A worker that was only slow cannot store its rows after that: the last step of its write
(inside the transaction) checks the job is still running, else the whole write is undone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from patients.labs.importer import ImportReport, RowError, import_lab_results, read_text
from patients.models import Clinic, ImportJobStatus, LabImportJob
from tracker.errors import ServiceError

logger = logging.getLogger(__name__)


def sync_max_rows() -> int:
    return int(settings.COBALT.get("IMPORT_SYNC_MAX_ROWS", 2000))


def count_rows(text: str) -> int:
    """The result rows of a CSV text as lines count them: non-blank lines after the header (a quoted cell
    over several lines counts more than once, which only errs towards running a job)."""
    return max(sum(1 for line in text.splitlines() if line.strip()) - 1, 0)


def runs_as_job(text: str) -> bool:
    return count_rows(text) > sync_max_rows()


def import_job_create(*, text: str, clinic: Clinic, user: Any, keep_valid: bool = False) -> LabImportJob:
    """Store the upload as a queued job and hand it to a worker once the row is committed."""
    job = LabImportJob.objects.create(
        clinic=clinic,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        keep_valid=keep_valid,
        content=read_text(text),
        rows_total=count_rows(text),
    )
    job_id = job.pk
    transaction.on_commit(lambda: dispatch(job_id))
    return job


def dispatch(job_id: int) -> None:
    try:
        import_lab_job.delay(job_id)
    except Exception:  # broker down: say so on the job rather than leave it queued for ever
        logger.exception("could not queue lab import job %s", job_id)
        _fail(job_id, "file", "could not be queued for import (the task queue is unavailable); upload it again")


class JobAbandoned(Exception):
    """The job was failed as stale while its worker still ran: the worker stops and stores nothing."""


def stale_seconds() -> int:
    return int(settings.COBALT.get("IMPORT_STALE_SECONDS", 600))


def _stale_message(status: str) -> str:
    minutes = max(round(stale_seconds() / 60), 1)
    if status == ImportJobStatus.QUEUED:
        stopped = f"no worker started importing it within {minutes} minutes"
    else:
        stopped = f"the worker importing it stopped (no sign of it for {minutes} minutes)"
    return (
        f"was not imported: {stopped}. Nothing was stored (an import writes its results in one transaction, "
        "at the end); upload the file again."
    )


def fail_stale_jobs(at: datetime, job_id: int | None = None) -> int:
    """Fail every job (or the one job) queued or running whose heartbeat is older than stale_seconds() at
    `at`. A compare-and-set on the heartbeat: a worker that reports in first keeps its job."""
    cutoff = at - timedelta(seconds=stale_seconds())
    failed = 0
    for status in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING):
        stale = LabImportJob.objects.filter(status=status, heartbeat_at__lt=cutoff)
        if job_id is not None:
            stale = stale.filter(pk=job_id)
        failed += stale.update(
            status=ImportJobStatus.FAILED,
            error_field="file",
            error_message=_stale_message(status),
            content="",
            finished_at=at,
        )
    return failed


def fail_if_stale(job: LabImportJob) -> LabImportJob:
    """On reading a job (the page, the API): no query unless its heartbeat is already too old."""
    now = timezone.now()
    if job.finished or job.heartbeat_at >= now - timedelta(seconds=stale_seconds()):
        return job
    if fail_stale_jobs(now, job_id=job.pk):
        job.refresh_from_db()
    return job


def _fail(job_id: int, field: str, message: str) -> None:
    LabImportJob.objects.filter(pk=job_id).update(
        status=ImportJobStatus.FAILED,
        error_field=field,
        error_message=message[:500],
        content="",
        finished_at=timezone.now(),
    )


def run_import_job(job_id: int) -> str:
    """The worker's part: claim the job, import its file with progress, store the report."""
    now = timezone.now()
    claimed = LabImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.RUNNING, stage="checking", started_at=now, heartbeat_at=now
    )
    if not claimed:
        return "not queued"
    job = LabImportJob.objects.select_related("clinic", "created_by").get(pk=job_id)
    running = LabImportJob.objects.filter(pk=job_id, status=ImportJobStatus.RUNNING)

    def progress(stage: str, done: int, total: int) -> None:
        # Checking runs outside any transaction (each update is seen at once, and is the heartbeat);
        # "writing" is said once, before the write's transaction (inside it, an update would hold the job's
        # row locked until the commit and be seen only then).
        if stage == "writing" and done:
            return
        changes: dict[str, Any] = {"stage": stage, "heartbeat_at": timezone.now()}
        if stage == "checking":
            changes.update(rows_done=done, rows_total=total)
        if not running.update(**changes):
            raise JobAbandoned

    def still_ours() -> None:
        # Inside the write's transaction: the job's row stays locked until the commit, and its fresh
        # heartbeat keeps fail_stale_jobs (which waits for the lock) from failing it after the rows are in.
        if not running.update(heartbeat_at=timezone.now()):
            raise JobAbandoned

    try:
        report = import_lab_results(
            data=job.content,
            clinic=job.clinic,
            user=job.created_by,
            keep_valid=job.keep_valid,
            progress=progress,
            before_commit=still_ours,
        )
    except JobAbandoned:
        logger.warning("lab import job %s was failed as stale while its worker ran; nothing stored", job_id)
        return "abandoned"
    except ServiceError as exc:
        _fail(job_id, exc.field, exc.message)
        return "failed"
    except Exception:
        logger.exception("lab import job %s stopped", job_id)
        _fail(job_id, "file", "could not be imported: the import stopped with an unexpected error")
        raise
    running.update(
        status=ImportJobStatus.DONE,
        rows_total=report.rows,
        rows_done=report.rows,
        report={**report.as_dict(), "accepted_rows": report.accepted_rows},
        content="",
        finished_at=timezone.now(),
    )
    return "done"


def job_report(job: LabImportJob) -> ImportReport | None:
    """The stored report as the importer returned it (None until the job is done)."""
    if not job.report:
        return None
    data = job.report
    return ImportReport(
        rows=int(data["rows"]),
        created=int(data["created"]),
        import_batch=str(data["import_batch"]),
        errors=[RowError(int(e["row"]), str(e["field"]), str(e["message"])) for e in data["errors"]],
        accepted_rows=[int(n) for n in data.get("accepted_rows", [])],
    )


@shared_task(name="patients.import_lab_job")
def import_lab_job(job_id: int) -> str:
    # Acknowledged on receipt (not acks_late): a redelivery after a worker died mid-import would find the job
    # "running" and do nothing anyway (run_import_job claims only queued jobs).
    return run_import_job(int(job_id))
