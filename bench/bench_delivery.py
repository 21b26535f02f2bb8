"""Benchmark of reminder delivery: N email reminders through two Celery workers to a local
SMTP server, counting throughput, duplicates and losses.

Run from the project root with DATABASE_URL set and Redis on 127.0.0.1:6379:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/bench_delivery.py
    ... bench/bench_delivery.py --deliveries 1000 --concurrency 4

The bench never touches the database named in DATABASE_URL: it uses (and creates) a sibling database
"<name>_bench_delivery", empties its clinical tables and bulk-creates one patient, regimen, planned dose and
due dose-reminder row per delivery (each to its own address, so a duplicate is two messages to one
address). It runs an aiosmtpd server in this process, starts two `celery worker` processes on Redis db 12
(flushed first), dispatches every row and waits until every row is settled. Exit status 1 when any
message is duplicated or lost.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/12"


class Recorder:
    """aiosmtpd handler that counts messages per recipient."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_address: dict[str, int] = {}
        self.total = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.by_address[rcpt] = self.by_address.get(rcpt, 0) + 1
                self.total += 1
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def address(n: int) -> str:
    return f"bench{n}@example.test"


def populate(n: int) -> list[int]:
    from django.utils import timezone

    from notifications.models import Alert, Channel, Delivery, Purpose
    from patients.models import Clinic, Patient
    from regimens.models import Protocol, Regimen, ScheduledDose
    from regimens.services import protocol_snapshot

    benchdb.truncate(Delivery, Alert, Patient, Clinic)
    clinic = Clinic.objects.create(name="Bench clinic")
    protocol = Protocol.objects.prefetch_related("phases", "recheck_steps").get(code="hydroxo-uk-standard")
    snapshot = protocol_snapshot(protocol)
    today = timezone.localdate()
    now = timezone.now()

    patients = benchdb.bulk_create(
        Patient,
        [
            Patient(
                clinic=clinic,
                mrn=f"D{i:07d}",
                given_name="Bench",
                family_name=f"Patient {i}",
                birth_date=date(1960, 1, 1),
                sex="female",
                timezone="Europe/London",
                deficiency_cause="pernicious_anemia",
                email=address(i),
                reminder_channel="email",
                ical_token=uuid.uuid4().hex,
            )
            for i in range(n)
        ],
        "patients",
    )
    regimens = benchdb.bulk_create(
        Regimen,
        [Regimen(patient=p, protocol=protocol, start_date=today, protocol_snapshot=snapshot) for p in patients],
        "regimens",
    )
    doses = benchdb.bulk_create(
        ScheduledDose,
        [
            ScheduledDose(
                regimen=r,
                patient_id=r.patient_id,
                clinic_id=r.patient.clinic_id,
                phase_index=0,
                phase="loading",
                sequence=1,
                due_date=today + timedelta(days=1),
                drug="hydroxocobalamin",
                dose_mcg=1000,
                route="IM",
            )
            for r in regimens
        ],
        "doses",
    )
    deliveries = benchdb.bulk_create(
        Delivery,
        [
            Delivery(
                idempotency_key=f"bench:dose:{d.pk}",
                purpose=Purpose.DOSE_REMINDER,
                channel=Channel.EMAIL,
                patient_id=d.patient_id,
                dose=d,
                address=address(i),
                subject=f"Reminder {i}",
                body="Your B12 injection is due tomorrow.",
                due_at=now,
            )
            for i, d in enumerate(doses)
        ],
        "deliveries",
    )
    return [d.pk for d in deliveries]


def start_worker(url: str, smtp_port: int, concurrency: int, log_dir: Path) -> subprocess.Popen[bytes]:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tracker.settings.base",
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "DEBUG": "False",
    }
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tracker",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(procs: list[subprocess.Popen[bytes]], log_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"a worker exited with {proc.returncode}; logs in {log_dir}")
        logs = [p.read_text(errors="replace") for p in log_dir.glob("*.log")]
        if sum(" ready." in text for text in logs) >= len(procs):
            return
        time.sleep(0.2)
    raise SystemExit(f"workers not ready after {timeout:.0f} s; logs in {log_dir}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--deliveries", default=10_000, what="due email reminders")
    parser.add_argument("--concurrency", type=int, default=4, help="prefork processes per worker (two workers)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    url = benchdb.setup_sibling_database("bench_delivery", REDIS_URL=REDIS_URL)
    import tempfile

    import redis
    from aiosmtpd.controller import Controller
    from django.db.models import Count

    from notifications.models import Delivery
    from notifications.outbox import dispatch

    redis.Redis.from_url(REDIS_URL).flushdb()
    n = args.deliveries
    with benchdb.timed() as building:
        ids = populate(n)
    print(f"Delivery benchmark on {benchdb.database_name(url)}: {n:,} due email reminders")
    print(f"  data built in {building.seconds:.1f} s")

    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    log_dir = Path(tempfile.mkdtemp(prefix="bench_delivery_"))
    procs = [start_worker(url, port, args.concurrency, log_dir) for _ in range(2)]
    try:
        wait_ready(procs, log_dir)
        print(f"  two workers x {args.concurrency} processes ready (logs in {log_dir})")
        started = time.perf_counter()
        for delivery_id in benchdb.progress(ids, desc="dispatch", unit="task"):
            dispatch(delivery_id)
        dispatched = time.perf_counter() - started
        deadline = time.monotonic() + args.timeout
        with benchdb.progress(total=n, desc="delivered", unit="msg") as bar:
            while time.monotonic() < deadline:
                settled = Delivery.objects.exclude(status__in=["pending", "sending"]).count()
                bar.update(recorder.total - bar.n)
                if settled >= n:
                    break
                time.sleep(0.25)
        took = time.perf_counter() - started
    finally:
        stop(procs)
        controller.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()

    statuses = dict(Delivery.objects.values_list("status").annotate(c=Count("id")).order_by())
    duplicates = sum(c - 1 for c in recorder.by_address.values() if c > 1)
    lost = sum(1 for i in range(n) if address(i) not in recorder.by_address)
    print(f"  dispatched in {dispatched:.1f} s; all settled in {took:.1f} s")
    print(f"  throughput: {recorder.total / took:,.0f} messages/s ({recorder.total:,} messages)")
    print(f"  rows: {statuses}")
    print(f"  duplicates: {duplicates}   losses: {lost}")
    return 1 if duplicates or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
