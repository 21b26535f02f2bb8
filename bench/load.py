"""Load test with a real HTTP client: wrk (Debian's `wrk` package, its own program, not a project dependency)
against gunicorn serving the bench database that bench/results.py left (`make bench-quick` or `make bench`
first). Reports requests/s, p50 and p95 latency and errors of the worklist (token) and the patient page
(session) into bench/RESULTS.md, beside the results table.

    make bench-load
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/load.py --seconds 20

gunicorn runs `tracker.wsgi` with the local settings (DEBUG off) and --workers 2 (as the Procfile), on a free
port of 127.0.0.1, its workers' clocks started at the bench's time (bench/gunicorn_clock.py: the data is dated
around it, so "overdue" and "today" mean what they mean in bench/results.py), and again 90 minutes later for the
overdue worklist while the clinic's patients straddle midnight; wrk runs --threads 2 with --connections open
(default 4). The machine is shared: read the figures against each other, not as capacity. A script, not a test:
it asserts nothing about speed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

LOAD_BEGIN, LOAD_END = "<!-- load.py -->", "<!-- /load.py -->"
# wrk's summary as key value lines: its own percentiles (microseconds), requests and every kind of error.
REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("P50_US %d\\n", latency:percentile(50)))
  io.write(string.format("P95_US %d\\n", latency:percentile(95)))
  io.write(string.format("REQUESTS %d\\n", summary.requests))
  io.write(string.format("SECONDS %f\\n", summary.duration / 1000000))
  io.write(string.format("ERRORS %d\\n", e.connect + e.read + e.write + e.timeout + e.status))
end
"""


@contextmanager
def serving(url: str, clock: datetime) -> Iterator[str]:
    """gunicorn (2 workers, DEBUG off) on a free port of 127.0.0.1 over the bench database, its workers' clocks
    started at `clock` (bench/gunicorn_clock.py); its base URL while it runs."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tracker.settings.base",
        "DATABASE_URL": url,
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "COBALT_BENCH_CLOCK": clock.isoformat(),
    }
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "tracker.wsgi", "-c", "python:bench.gunicorn_clock"]
    server = subprocess.Popen(  # noqa: S603
        [*command, "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/login/", server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 (our own server on 127.0.0.1)
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"gunicorn did not answer {url} within {seconds:.0f} s")


def run_wrk(url: str, header: str, seconds: int, connections: int, script: str) -> dict[str, float]:
    """One wrk run; its figures (requests/s, p50 and p95 in ms, errors)."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package)")
    threads = min(2, connections)  # wrk wants at least one connection per thread
    command = [wrk, "--threads", str(threads), "--connections", str(connections), "--duration", f"{seconds}s"]
    command += ["--timeout", "30s", "--script", script, "--header", header, url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    figures = dict(line.split(" ", 1) for line in out.splitlines() if line[:1].isupper() and " " in line)
    requests, duration = float(figures["REQUESTS"]), float(figures["SECONDS"])
    return {
        "rps": requests / duration if duration else 0.0,
        "p50_ms": float(figures["P50_US"]) / 1000,
        "p95_ms": float(figures["P95_US"]) / 1000,
        "requests": requests,
        "errors": float(figures["ERRORS"]),
    }


def targets() -> tuple[list[tuple[str, str, str, datetime]], int]:
    """(label, path, header, clock) of each endpoint, with a token and session of the bench clinic's staff issued at
    the bench's time; the clinic's number of patients. The server answers each endpoint at its `clock`: the bench's
    time (`AT`, as bench/results.py), and 90 minutes later for the overdue worklist while the clinic's patients
    straddle midnight (already the next day in Auckland)."""
    import time_machine
    from django.test import Client

    from bench.bench_sweep import AT
    from bench.results import ensure_staff, fresh_token, median_patient
    from patients.models import Clinic, Patient

    clinic = Clinic.objects.filter(name="Bench clinic").first()
    if clinic is None:
        raise SystemExit("no bench clinic in this database: run `make bench-quick` (or `make bench`) first")
    patients = Patient.objects.filter(clinic=clinic).count()
    staff = ensure_staff(clinic)
    token = fresh_token(staff["nurse"], AT)
    browser = Client()
    with time_machine.travel(AT, tick=False):
        browser.force_login(staff["clinician"])  # the session starts at AT
    session = browser.cookies["sessionid"].value
    patient_id, doses = median_patient(clinic)
    day = AT.date().isoformat()
    auth = f"Authorization: Token {token}"
    overdue = f"/api/doses/?clinic={clinic.pk}&overdue=true"
    return [
        (
            "worklist `/api/doses/` one clinic-day (token)",
            f"/api/doses/?clinic={clinic.pk}&due_from={day}&due_to={day}",
            auth,
            AT,
        ),
        ("worklist `/api/doses/?overdue=true` (token)", overdue, auth, AT),
        (
            "worklist `/api/doses/?overdue=true` while the clinic's patients straddle midnight (token)",
            overdue,
            auth,
            AT + timedelta(minutes=90),
        ),
        (
            f"patient page `/patients/{{id}}/` ({doses} doses; session)",
            f"/patients/{patient_id}/",
            f"Cookie: sessionid={session}",
            AT,
        ),
    ], patients


def write(results: list[tuple[str, dict[str, float]]], patients: int, seconds: int, connections: int) -> None:
    from bench.bench_sweep import AT
    from bench.results import replace_section

    lines = [
        LOAD_BEGIN,
        "## Load test",
        "",
        f"Written by `bench/load.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores, shared): wrk, {connections} "
        f"connections over 2 threads for {seconds} s per endpoint, against gunicorn (2 workers) on the bench "
        f"database of {patients:,} patients, its clock set to the bench's time ({AT:%Y-%m-%d %H:%M} UTC, the day "
        "the data is built around; 90 minutes later it is already the next day in Auckland).",
        "",
        "| endpoint | requests/s | p50 | p95 | requests | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in results:
        lines.append(
            f"| {label} | {r['rps']:.1f} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | {r['requests']:,.0f} | "
            f"{r['errors']:,.0f} |"
        )
    lines.append(LOAD_END)
    replace_section(LOAD_BEGIN, LOAD_END, "\n".join(lines))
    print("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--seconds", default=15, what="seconds of load per endpoint")
    benchdb.add_size(parser, "--connections", default=4, what="open connections")
    args = parser.parse_args(argv)
    url = benchdb.setup_sibling_database("bench_results")
    endpoints, patients = targets()
    from django.db import connections

    connections.close_all()
    results: list[tuple[str, dict[str, float]]] = []
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(REPORT_LUA)
    try:
        for clock in sorted({at for *_, at in endpoints}):
            with serving(url, clock) as base:
                for label, path, header, at in endpoints:
                    if at != clock:
                        continue
                    run_wrk(base + path, header, 2, 1, script.name)  # warm both workers' caches and connections
                    figures = run_wrk(base + path, header, args.seconds, args.connections, script.name)
                    print(f"  {label} at {at:%Y-%m-%d %H:%M} UTC: {figures}", file=sys.stderr)
                    results.append((f"{label} at {at:%H:%M} UTC", figures))
    finally:
        Path(script.name).unlink()
    write(results, patients, args.seconds, args.connections)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
