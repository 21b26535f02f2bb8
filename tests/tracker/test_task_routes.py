"""Where each Celery task goes, asked of Celery's own router (settings CELERY_TASK_QUEUES and CELERY_TASK_ROUTES).

A reminder's delivery and the rules run after a result or a dose is recorded go to the interactive queue
("celery"), the sweeps, re-plans and imports to "bulk", so that a long sweep cannot delay what a patient or a member
of staff waits for (docs/scaling.md, "Workers and queues"). A task renamed without its route, or a route dropped,
sends bulk work back to the interactive queue: these tests fail then.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery.beat import ScheduleEntry

from tracker.celery import app

INTERACTIVE = ("notifications.deliver", "monitoring.evaluate_patient")
BULK = (
    "tracker.run_sweep",
    "tracker.run_sweep_shard",
    "tracker.finish_sweep",
    "regimens.replan_clinic_job",
    "patients.import_lab_job",
)


def queue_of(name: str, args: tuple[Any, ...] = (), options: dict[str, Any] | None = None) -> str:
    """The queue Celery publishes task `name` to, with these apply_async options."""
    route = app.amqp.router.route(dict(options or {}), name, args)
    return str(route["queue"].name)


@pytest.mark.parametrize("name", INTERACTIVE)
def test_deliveries_and_evaluations_go_to_the_interactive_queue(name: str) -> None:
    assert queue_of(name) == "celery"


@pytest.mark.parametrize("name", BULK)
def test_sweeps_replans_and_imports_go_to_the_bulk_queue(name: str) -> None:
    assert queue_of(name) == "bulk"


def test_every_routed_name_is_a_registered_task() -> None:
    """A task renamed in its @shared_task but not in CELERY_TASK_ROUTES would go to the default queue."""
    app.loader.import_default_modules()
    missing = [name for name in (*INTERACTIVE, *BULK) if name not in app.tasks]
    assert not missing
    assert set(app.conf.task_routes) == set(BULK)


def test_beat_sends_the_outbox_sweep_to_the_interactive_queue_and_the_others_to_bulk() -> None:
    """The outbox sweep hands the reminders planned ahead to a worker when they fall due: behind a monitoring sweep's
    shards in "bulk" they would wait for them. Routed as beat sends them (the entry's options)."""
    queues = {}
    for name, spec in app.conf.beat_schedule.items():
        entry = ScheduleEntry(name=name, app=app, **spec)
        queues[name] = queue_of(entry.task, tuple(entry.args), entry.options)
    assert queues == {
        "horizons": "bulk",
        "monitoring": "bulk",
        "reminders": "bulk",
        "staff": "bulk",
        "evaluations": "bulk",
        "outbox": "celery",
    }


def test_a_worker_without_q_consumes_both_queues() -> None:
    """The integration tests' and the benchmarks' workers are started without -Q: they serve every queue."""
    assert sorted(app.amqp.queues.consume_from) == ["bulk", "celery"]
    assert app.conf.task_default_queue == "celery"


def test_each_queue_is_bound_by_its_own_name() -> None:
    """Left empty, Celery binds every queue with the default routing key "celery": a message sent to that key on the
    default exchange would then be copied into both queues and run twice."""
    assert {name: queue.routing_key for name, queue in app.amqp.queues.items()} == {"celery": "celery", "bulk": "bulk"}
