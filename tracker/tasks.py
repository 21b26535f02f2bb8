"""Celery tasks of the shared plumbing: every periodic sweep runs through `run_sweep`.

Celery beat sends `run_sweep(name)` on the schedule in settings (CELERY_BEAT_SCHEDULE); the task runs the
sweep registered in tracker/sweeps.py as of the time the task starts, under the sweep's lock, so a run never
overlaps another run of the same sweep. With more than one shard of patients (COBALT SWEEP_SHARD_SIZE) and a
result backend, it fans the shards out as a chord: one `run_sweep_shard` task per shard, all with the same
`at`, served by whichever workers are free, and a `finish_sweep` callback that runs the sweep's global part,
logs the totals and releases the lock. Otherwise it runs every shard itself, one after the other, through
the same code (as `manage.py run_sweeps` does). Sweeps are idempotent, so a duplicate beat message or a
redelivered shard changes nothing the second time.

The lock: `run_sweep` takes it and, when it fans out, leaves it held; each shard and the callback renew it
while they run (and take it back if it expired and nobody else took it), the callback releases it, only if
still ours. A shard that finds another run holding the lock does nothing. If a worker dies, the lock expires
SWEEP_LOCK_SECONDS after its last renewal. A shard that raises is logged and reported to the callback as
failed (a chord with a failed member would never call its callback): the global part still runs, the lock is
released, and the next run does that shard's patients again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import chord, shared_task
from django.utils import timezone

from tracker import sweeps

logger = logging.getLogger(__name__)


def _can_fan_out(task: Any) -> bool:
    """A chord needs a result backend (Redis with REDIS_URL; none with the file-system broker of `make run`)."""
    backend = task.app.conf.result_backend
    return bool(backend) and backend != "disabled"


@shared_task(name="tracker.run_sweep", acks_late=True)
def run_sweep(name: str, at_iso: str | None = None) -> dict[str, Any]:
    """Run sweep `name` now (or as of `at_iso`, as `run_sweeps --at`), unless a run of it is still going
    (sweeps.lock_acquire): a first monitoring run after an outage may outlast the beat period, and the next
    beat must not start a second one beside it. Returns the counts of an inline run, or
    {"shards": n, "finish": <the callback's task id>} when fanned out."""
    sweep = sweeps.load()[name]
    token = sweeps.lock_acquire(name)
    if token is None:
        logger.info("sweep %s is still running elsewhere: this run is skipped", name)
        return {"skipped_running": 1}
    at = datetime.fromisoformat(at_iso) if at_iso else timezone.now()
    fanned_out = False
    try:
        plan = sweep.shards()
        if len(plan) > 1 and _can_fan_out(run_sweep):
            header = [run_sweep_shard.si(name, at.isoformat(), s.lo, s.hi, token) for s in plan]
            result = chord(header)(finish_sweep.s(name, at.isoformat(), token))
            fanned_out = True
            logger.info("sweep %s as of %s: %d shards sent to the workers", name, at.isoformat(), len(plan))
            return {"shards": len(plan), "finish": result.id}
        with sweeps.keep_lock(name, token):
            return sweep(at)
    finally:
        if not fanned_out:
            sweeps.lock_release(name, token)


@shared_task(name="tracker.run_sweep_shard", bind=True, acks_late=True, ignore_result=False)
def run_sweep_shard(self: Any, name: str, at_iso: str, lo: int | None, hi: int | None, token: str) -> dict[str, Any]:
    """One shard of a fanned-out run: the per-patient part of sweep `name` for the patients lo <= id < hi, as
    of `at_iso`. Its counts and the worker that ran it go to `finish_sweep`."""
    worker = str(self.request.hostname or "inline")
    try:
        if not sweeps.lock_hold(name, token):
            logger.warning("sweep %s: shard [%s, %s) skipped, another run holds the lock", name, lo, hi)
            return {"counts": {}, "worker": worker, "skipped": True}
        with sweeps.keep_lock(name, token):
            counts = sweeps.load()[name].run_shard(datetime.fromisoformat(at_iso), sweeps.Shard(lo, hi))
    except Exception as error:  # noqa: BLE001 (reported to the callback: a chord whose shard raised never calls it)
        # A shard that raised would leave the chord without its callback: the sweep's global part (digests,
        # the outbox) skipped and the lock held until it expires. Its work is not lost: each shard writes in
        # its own transactions and sweeps are idempotent, so the next run does these patients again.
        logger.exception("sweep %s: shard [%s, %s) failed; the next run does its patients again", name, lo, hi)
        return {"counts": {}, "worker": worker, "skipped": False, "failed": type(error).__name__}
    return {"counts": counts, "worker": worker, "skipped": False}


@shared_task(name="tracker.finish_sweep", acks_late=True, ignore_result=False)
def finish_sweep(results: list[dict[str, Any]], name: str, at_iso: str, token: str) -> dict[str, Any]:
    """The chord's callback, once every shard is done: the sweep's global part, the totals in the log, and the
    lock released (only if still ours)."""
    try:
        counts = sweeps.add_counts([r["counts"] for r in results])
        skipped = sum(1 for r in results if r.get("skipped"))
        failed = sum(1 for r in results if r.get("failed"))
        if sweeps.lock_hold(name, token):
            with sweeps.keep_lock(name, token):
                counts = sweeps.add_counts([counts, sweeps.load()[name].finish(datetime.fromisoformat(at_iso))])
        else:
            logger.warning("sweep %s: global part skipped, another run holds the lock", name)
        workers = sorted({str(r["worker"]) for r in results})
        summary = ", ".join(f"{k}={v}" for k, v in counts.items()) or "nothing to do"
        logger.log(
            logging.WARNING if failed else logging.INFO,
            "sweep %s as of %s: %d shards (%d skipped, %d failed) on %s: %s",
            name,
            at_iso,
            len(results),
            skipped,
            failed,
            ", ".join(workers),
            summary,
        )
        return {
            "counts": counts,
            "shards": len(results),
            "skipped_shards": skipped,
            "failed_shards": failed,
            "workers": workers,
        }
    finally:
        sweeps.lock_release(name, token)
