"""gunicorn settings for bench/load.py: each worker process runs on the bench's clock.

The bench database is built around `bench.bench_sweep.AT` (its doses, rechecks and results are dated from it), so the
load test asks the server at that time, as bench/results.py asks in-process: `COBALT_BENCH_CLOCK` (an ISO 8601 time
with offset) is where every worker's clock starts, and it then ticks (time-machine, a test dependency). Used as
`gunicorn -c python:bench.gunicorn_clock`; without the variable the clock is the real one.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any


def post_fork(server: Any, worker: Any) -> None:
    at = os.environ.get("COBALT_BENCH_CLOCK")
    if at:
        import time_machine

        # Started for the worker's lifetime; the process ends with it.
        time_machine.travel(datetime.fromisoformat(at), tick=True).start()
