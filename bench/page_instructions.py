"""The patient page's cost in CPU instructions, counted by valgrind's callgrind: the same count for the same code and
data whatever else the machine is doing, where a shared machine's timings vary by a third from run to run. Use it
to compare two versions of the page (docs/scaling.md counted the change of the page's rows this way).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt_small .venv/bin/python bench/page_instructions.py

It reads the bench database that `bench/results.py` left (`<name>_bench_results`), the same patient the patient
page's row measures (the clinic's median patient, signed in as the clinician), and prints, per request:
- `request`: the whole request through Django's test client (middleware, reads, sections, templates);
- `templates`: every template the request rendered, rendered again from the contexts the view built (no query).

Each figure is the difference between a run that makes N requests (or renders) and one that makes none, divided
by N, so Python's start-up and Django's set-up cancel out. Only this process's instructions count: PostgreSQL's
work happens in its own process. The four runs take a few minutes under callgrind (about 50 times slower).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = ("request", "templates")


def inner(mode: str, times: int) -> None:
    """One warm request (or render) and then `times` more: what callgrind counts (see `count`)."""
    from bench import benchdb

    benchdb.setup_sibling_database("bench_results")
    import time_machine
    from django.test import Client

    from bench.bench_sweep import AT
    from bench.results import captured_renders, ensure_staff, median_patient, name_staff
    from patients.models import Clinic

    clinic = Clinic.objects.get(name="Bench clinic")
    staff = ensure_staff(clinic)
    patient_id, _doses = median_patient(clinic)
    name_staff(patient_id, staff)
    with time_machine.travel(AT, tick=False):
        browser = Client()
        browser.force_login(staff["clinician"])
        url = f"/patients/{patient_id}/"
        with captured_renders() as renders:
            response = browser.get(url)
        assert response.status_code == 200, response.status_code
        for template, context, request in renders:
            template.render(context, request)
        for _ in range(times):
            if mode == "request":
                browser.get(url)
            else:
                for template, context, request in renders:
                    template.render(context, request)


def count(mode: str, times: int) -> int:
    """The instructions callgrind counted in a run of `inner(mode, times)`."""
    done = subprocess.run(  # noqa: S603 (valgrind on this script)
        [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, __file__, "--inner", mode, str(times),
        ],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )  # fmt: skip
    found = re.findall(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"the run under callgrind failed ({mode}, {times}):\n{done.stderr[-3000:]}")
    return int(found[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--times", type=int, default=20, help="requests (or renders) counted per run (default 20)")
    parser.add_argument("--inner", nargs=2, metavar=("MODE", "TIMES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        inner(args.inner[0], int(args.inner[1]))
        return 0
    if args.times < 1:
        parser.error("--times: at least 1")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("set DATABASE_URL to the PostgreSQL URL bench/results.py was run with")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    runs = [(mode, times) for mode in MODES for times in (0, args.times)]
    print(f"counting {len(runs)} runs under callgrind, two at a time (a few minutes)...", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=2) as pool:
        counted = dict(zip(runs, pool.map(lambda run: count(*run), runs), strict=True))
    print("| what | instructions per request |\n| --- | --- |")
    for mode in MODES:
        per = (counted[(mode, args.times)] - counted[(mode, 0)]) / args.times
        print(f"| {mode} | {per / 1e6:.1f} million |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
