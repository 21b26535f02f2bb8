"""Real parts for the delivery integration tests): an aiosmtpd SMTP server, Celery worker
subprocesses on Redis, a throwaway redis-server, and bulk helpers that write committed Delivery rows.
All on 127.0.0.1; tests/conftest.py `require_service` skips locally / fails under CI without PostgreSQL
and Redis."""

from __future__ import annotations

import email
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
REDIS_PORT = 6379
WORKER_REDIS_DB = 11
WORKER_BOOT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- SMTP ------------------------------------------------------------------------------------------


@dataclass
class Received:
    to: str
    subject: str
    message_id: str


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: mode "accept" records every message; "tempfail" answers 451 to the first
    `tempfail_times` RCPTs per recipient, then accepts; "reject" answers 550 always."""

    mode: str = "accept"
    tempfail_times: int = 1
    delay: float = 0.0
    messages: list[Received] = field(default_factory=list)
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:  # noqa: N802
        with self.lock:
            tries = self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
        if self.mode == "reject":
            return "550 5.1.1 mailbox unavailable"
        if self.mode == "tempfail" and tries <= self.tempfail_times:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                subject, message_id = str(message.get("Subject", "")), str(message.get("Message-ID", ""))
                self.messages.append(Received(rcpt, subject, message_id))
        return "250 Message accepted for delivery"

    def count_by_address(self) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {}
            for msg in self.messages:
                counts[msg.to] = counts.get(msg.to, 0) + 1
            return counts

    def total(self) -> int:
        with self.lock:
            return len(self.messages)


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpRecorder, int]]:
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


# --- Redis and Celery ------------------------------------------------------------------------------


# These tests deliver reminders now, whatever the hour the suite runs at: no quiet hours (equal ends mean
# none, notifications/timing.py), in this process and in every worker it starts. The quiet hours
# themselves are tested with a fixed clock in tests/notifications/.
NO_QUIET_HOURS = {"COBALT_REMINDER_QUIET_START": "00:00", "COBALT_REMINDER_QUIET_END": "00:00"}


@pytest.fixture(autouse=True)
def no_quiet_hours(settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REMINDER_QUIET_START": "00:00", "REMINDER_QUIET_END": "00:00"}


@pytest.fixture
def services() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", REDIS_PORT)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


def current_test_db_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """One `celery worker` process group (main process + prefork children). It consumes every queue of
    CELERY_TASK_QUEUES, as a worker started without -Q does, unless `queues` names some ("celery", as `make run`'s
    `worker`: the interactive queue only)."""

    def __init__(
        self,
        broker_url: str,
        smtp_port: int,
        log_dir: Path,
        env: dict[str, str] | None = None,
        concurrency: int = 4,
        queues: str | None = None,
    ) -> None:
        self.name = f"h6-{uuid.uuid4().hex[:8]}"
        self.log = log_dir / f"{self.name}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tracker.settings.base",
            "DATABASE_URL": current_test_db_url(),
            "REDIS_URL": broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_TIMEOUT": "5",
            "DEBUG": "False",
            "CELERY_TASK_ALWAYS_EAGER": "False",
            "COBALT_DELIVERY_BACKOFF_SECONDS": "1",
            **NO_QUIET_HOURS,
            **(env or {}),
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tracker", "worker", "--loglevel=INFO",
                 f"--concurrency={concurrency}", "--pool=prefork", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-n", f"{self.name}@%h", *(["-Q", queues] if queues else [])],
                cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(self.ready, WORKER_BOOT_SECONDS, f"celery worker {self.name} (log {self.log})", 0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"celery worker exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
        return " ready." in self.output()

    def kill(self) -> None:
        """SIGKILL the whole group at once: no warm shutdown, tasks in flight die mid-send."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def start_worker(services: None, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(
        broker_url: str, smtp_port: int, env: dict[str, str] | None = None, concurrency: int = 4,
        queues: str | None = None,
    ) -> Worker:
        worker = Worker(broker_url, smtp_port, tmp_path, env, concurrency, queues)
        workers.append(worker)
        return worker

    yield start
    # The test is over: no need for a warm shutdown (two seconds a worker while its pool winds down).
    for worker in workers:
        worker.kill()


def use_broker(url: str) -> None:
    """Point this process's Celery app (the dispatching side) at `url`: drop its cached connection and
    producer pools (kombu keeps global ones too), so the next publish connects afresh."""
    from kombu import pools

    from tracker.celery import app

    pools.reset()
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(services: None) -> Iterator[Callable[[str], None]]:
    """Switch the dispatching broker per test (fail fast when it is down: no publish retries)."""
    from tracker.celery import app

    saved = (app.conf.broker_url, app.conf.task_publish_retry, app.conf.broker_connection_timeout)
    app.conf.task_publish_retry = False
    app.conf.broker_connection_timeout = 1
    yield use_broker
    app.conf.task_publish_retry, app.conf.broker_connection_timeout = saved[1], saved[2]
    use_broker(saved[0])


@pytest.fixture
def main_redis(services: None, broker: Callable[[str], None]) -> Iterator[str]:
    url = f"redis://127.0.0.1:{REDIS_PORT}/{WORKER_REDIS_DB}"
    flush_redis(url)
    broker(url)
    yield url
    flush_redis(url)


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: service_up(self.port), 10, f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def service_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def throwaway_redis(services: None) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server binary missing; CI must run the broker-loss test")
        pytest.skip("redis-server binary missing")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


# --- Data ------------------------------------------------------------------------------------------


def address(n: int) -> str:
    return f"patient{n}@example.test"


def make_dose_reminders(count: int, *, due_at: datetime, dispatch_now: bool = True, first: int = 0) -> list[int]:
    """`count` patients (email reminders), each with a planned dose and one due dose-reminder row
    written through outbox.enqueue in one committed transaction (its on_commit dispatch hits the broker
    when `dispatch_now`; otherwise the rows wait for the outbox sweep)."""
    from django.db import transaction
    from django.utils import timezone

    from notifications.models import Channel, Purpose
    from notifications.outbox import enqueue
    from patients.models import Clinic, Patient
    from regimens.models import Protocol, Regimen, ScheduledDose
    from regimens.services import protocol_snapshot

    clinic = Clinic.objects.create(name=f"Integration clinic {uuid.uuid4().hex[:6]}")
    protocol = Protocol.objects.prefetch_related("phases", "recheck_steps").get(code="hydroxo-uk-standard")
    snapshot = protocol_snapshot(protocol)
    today = timezone.localdate()
    patients = Patient.objects.bulk_create(
        Patient(
            clinic=clinic, mrn=f"I{n:06d}", given_name="Test", family_name=f"Patient {n}",
            birth_date=date(1960, 1, 1), sex="female", timezone="Europe/London",
            deficiency_cause="pernicious_anemia", email=address(n), reminder_channel="email",
            ical_token=uuid.uuid4().hex,
        )
        for n in range(first, first + count)
    )
    regimens = Regimen.objects.bulk_create(
        Regimen(patient=p, protocol=protocol, start_date=today, protocol_snapshot=snapshot) for p in patients
    )
    doses = ScheduledDose.objects.bulk_create(
        ScheduledDose(
            regimen=r, patient_id=r.patient_id, clinic_id=r.patient.clinic_id, phase_index=0, phase="loading",
            sequence=1,
            due_date=today + timedelta(days=1), drug="hydroxocobalamin", dose_mcg=1000, route="IM",
        )
        for r in regimens
    )
    ids: list[int] = []
    with transaction.atomic():
        for n, (patient, dose) in enumerate(zip(patients, doses, strict=True), start=first):
            delivery, _ = enqueue(
                key=f"integration:dose:{dose.pk}", purpose=Purpose.DOSE_REMINDER, channel=Channel.EMAIL,
                subject=f"Reminder {n}", body="Your B12 injection is due tomorrow.", due_at=due_at,
                patient=patient, address=address(n), dose=dose,
                now=due_at if dispatch_now else due_at - timedelta(hours=1),
            )
            ids.append(delivery.pk)
    return ids


def status_counts() -> dict[str, int]:
    from django.db.models import Count

    from notifications.models import Delivery

    return {row["status"]: row["n"] for row in Delivery.objects.values("status").annotate(n=Count("id")).order_by()}


def wait_delivered(count: int, timeout: float) -> None:
    """Until no row is pending or sending (all `count` rows settled)."""

    def settled() -> bool:
        counts = status_counts()
        return sum(counts.values()) == count and not counts.get("pending") and not counts.get("sending")

    try:
        wait_for(settled, timeout, f"{count} deliveries to settle", 0.25)
    except AssertionError as exc:  # say where they stand at the end, not where they stood at the start
        raise AssertionError(f"{exc} (now {status_counts()})") from None


def sweep_until_delivered(count: int, rounds: int, worker: Any = None) -> None:
    """Run the outbox sweep every few seconds, as beat would, until all `count` rows are settled, at most `rounds`
    times: a sweep that runs before this process's (or the worker's) connection to a restarted broker is back
    leaves its rows pending for the next one, never lost. On failure, the end of `worker`'s log says whether it
    reconnected or exited."""
    from django.utils import timezone

    from tracker import sweeps

    for _ in range(rounds):
        sweeps.run("outbox", timezone.now())
        try:
            wait_delivered(count, timeout=5)
            return
        except AssertionError:
            continue
    try:
        wait_delivered(count, timeout=5)
    except AssertionError as exc:
        log = f"; the worker's log ends:\n{worker.output()[-4000:]}" if worker is not None else ""
        raise AssertionError(f"{exc}{log}") from None
