"""`make run` serves the demo from a SQLite file (the embedded default), while the rest of the suite runs on
PostgreSQL: a statement only PostgreSQL understands would pass every other test and answer 500 in the demo (the
dashboard did). Here the demo is built as `make run` builds it, in a SQLite file, and every page without a
parameter is asked as the demo's admin, nurse and clinician."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 (our own manage.py)
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_the_demo_on_sqlite_answers_every_page_without_a_server_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "tracker.settings.base",
    }
    manage("migrate", "--noinput", "-v0", env=env)
    manage("seed_demo", "--no-progress", env=env)
    out = manage("shell", "-c", "from tests.tracker.demo_walk import main; main()", env=env)
    walk = json.loads(out.strip().splitlines()[-1])
    assert walk["asked"] > 200
    assert walk["failures"] == []
