"""run_sweeps and Celery beat run the same sweeps; a real worker on Redis runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from regimens.models import Protocol, Regimen
from regimens.services import regimen_start
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]


def _lifelong_regimen(patient: Any) -> Regimen:
    return regimen_start(
        patient=patient,
        protocol=Protocol.objects.get(code="ileal-resection"),
        start_date=date(2027, 1, 4),
        today=date(2027, 1, 4),
    )


def test_it_refuses_an_at_without_a_time_zone(db: Any) -> None:
    with pytest.raises(CommandError, match="time zone offset"):
        call_command("run_sweeps", "--at", "2027-01-04T09:00:00")


def test_it_refuses_an_at_that_is_not_a_date_time(db: Any) -> None:
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("run_sweeps", "--at", "next tuesday")


def test_it_extends_a_lifelong_horizon_once_for_the_same_instant(patient: Any) -> None:
    regimen = _lifelong_regimen(patient)
    last_planned = regimen.doses.order_by("-due_date").first()
    assert last_planned is not None and regimen.extend_on is not None
    at = datetime.combine(regimen.extend_on, datetime.min.time(), tzinfo=UTC).replace(hour=12)

    first, second = StringIO(), StringIO()
    call_command("run_sweeps", "--at", at.isoformat(), "--only", "horizons", stdout=first)
    call_command("run_sweeps", "--at", at.isoformat(), "--only", "horizons", stdout=second)

    assert "extended=1" in first.getvalue()
    assert "extended=0" in second.getvalue()
    newest = regimen.doses.order_by("-due_date").first()
    assert newest is not None and newest.due_date > last_planned.due_date


def test_it_names_the_unknown_sweep(db: Any) -> None:
    with pytest.raises(CommandError, match="unknown sweep 'nope'"):
        call_command("run_sweeps", "--only", "nope")


@pytest.mark.integration
def test_it_runs_a_sweep_sent_through_redis_on_a_real_worker(builtin_protocols: None, patient: Any) -> None:
    """Beat's message goes through the machine's Redis to a real `celery worker` process."""
    require_service("Redis", "127.0.0.1", 6379)
    regimen = _lifelong_regimen(patient)
    # Pretend the horizon came due long ago: the worker's sweep (as of now) must extend it.
    Regimen.objects.filter(pk=regimen.pk).update(extend_on=date(2026, 1, 1))
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker process needs a database server it can share with the test")
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # A database of its own on the machine's Redis so a stray message cannot reach another worker.
    broker = "redis://127.0.0.1:6379/13"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": broker, "DJANGO_SETTINGS_MODULE": "tracker.settings.base"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tracker", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        send = (
            "from tracker.celery import app; import tracker.tasks; "
            "app.send_task('tracker.run_sweep', args=('horizons',))"
        )
        subprocess.run([sys.executable, "-c", send], cwd=ROOT, env=env, check=True, timeout=60)
        deadline = time.monotonic() + 60
        output = ""
        assert worker.stdout is not None
        while time.monotonic() < deadline:
            line = worker.stdout.readline()
            output += line
            if "succeeded" in line and "extended" in line:
                break
        assert "{'extended': 1}" in output, output[-2000:]
        regimen.refresh_from_db()
        assert regimen.extend_on is not None and regimen.extend_on > date(2026, 1, 1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
