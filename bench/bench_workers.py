"""Celery workers sharing one monitoring sweep over the bench database (`make bench-workers`): the time of the
whole fanned-out run and each worker's peak memory (issue 16: "one worker's memory stays bounded").

Runs against the database `bench/results.py` built (`<DATABASE_URL's name>_bench_results`, 100,000 patients after
`make bench`), so run that first. Starts a throwaway redis-server on a free loopback port as broker and result
backend, `--workers` real `celery worker` processes (prefork, `--concurrency` children each), empties the alerts
and deliveries (`--first-run`, the default: the sweep then opens every alert, as after a go-live) and sends one
`tracker.run_sweep("monitoring")`; it waits for the chord's callback. Peak RSS is each process's high-water mark
(VmHWM) at the end: the worker's main process and its children, which run the shards. The shards each worker ran
are counted from its log. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402
from bench.results import replace_section  # noqa: E402

BEGIN, END = "<!-- bench_workers.py -->", "<!-- /bench_workers.py -->"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="prefork children per worker")
    parser.add_argument("--steady", action="store_true", help="keep the alerts: measure a steady-state run")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("bench_workers needs redis-server (apt-get install redis-server)")

    default = "postgres://postgres@127.0.0.1:5432/cobalt"
    url = benchdb.bench_url(os.environ.get("DATABASE_URL", default), "bench_results")
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tracker.settings.base",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "DEBUG": "False",
        "CELERY_TASK_ALWAYS_EAGER": "False",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings

    from bench.bench_sweep import AT
    from notifications.models import Alert, Delivery
    from patients.models import Patient
    from tracker.tasks import run_sweep

    patients = Patient.objects.count()
    if not patients:
        raise SystemExit(f"{url} has no patients: run bench/results.py (make bench) first")
    if not args.steady:
        print("emptying alerts and deliveries (a first run)", file=sys.stderr)
        benchdb.truncate(Delivery, Alert)

    logs = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    workers: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        wait_for(lambda: reachable(port), 10, "redis-server")
        for i in range(args.workers):
            name = f"bench{i}@%h"
            log = logs / f"worker{i}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "tracker", "worker", "--loglevel=INFO", "-n", name,
                     f"--concurrency={args.concurrency}", "--pool=prefork", "--without-gossip", "--without-mingle"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            workers.append((f"worker {i + 1}", proc, log))
        for label, _proc, log in workers:
            wait_for(lambda log=log: b" ready." in log.read_bytes(), 60, f"{label} to start")  # type: ignore[misc]
        print(f"{args.workers} workers up; sweeping {patients:,} patients", file=sys.stderr)
        started = time.monotonic()
        run_sweep.delay("monitoring", AT.isoformat())

        def finished() -> bool:  # the chord's callback (or an unsharded run) logged its success
            text = b"".join(log.read_bytes() for _label, _proc, log in workers)
            return b"tracker.finish_sweep[" in text and b"succeeded" in text.split(b"tracker.finish_sweep[")[-1]

        wait_for(finished, 7200, "the sweep's callback")
        elapsed = time.monotonic() - started
        rows = []
        for label, proc, log in workers:
            pids = [proc.pid, *children(proc.pid)]
            peak = max(peak_kib(pid) for pid in pids) / 1024
            shards = log.read_text(errors="replace").count("tracker.run_sweep_shard[") // 2  # received + succeeded
            rows.append(f"| {label} | {shards} | {peak:.0f} MiB |")
    finally:
        for _label, proc, _log in workers:
            os.killpg(proc.pid, signal.SIGTERM)
        for _label, proc, _log in workers:
            proc.wait(timeout=60)
        redis.terminate()
        redis.wait(timeout=10)

    opened = Alert.objects.count()
    section = "\n".join(
        [
            BEGIN,
            "## Monitoring sweep across Celery workers",
            "",
            f"Written by `bench/bench_workers.py` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC (load "
            f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores, shared): "
            f"{'a steady-state' if args.steady else 'a first'} monitoring run over {patients:,} patients "
            f"({opened:,} alerts open after it) fanned out by one `run_sweep` to {args.workers} workers of "
            f"{args.concurrency} prefork child each, shards of {settings.COBALT['SWEEP_SHARD_SIZE']:,} patient ids: "
            f"{elapsed:.1f} s from sending to the chord's callback.",
            "",
            "| worker | shards run | peak RSS (largest of its processes) |",
            "| --- | --- | --- |",
            *rows,
            END,
        ]
    )
    replace_section(BEGIN, END, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
