"""Production settings refuse to start without secrets; the default settings need nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _check(env_overrides: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "CRITICAL"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_it_refuses_to_start_production_without(missing: str) -> None:
    env = {"DJANGO_SETTINGS_MODULE": "tracker.settings.production", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "a.b"}
    del env[missing]
    result = _check(env, drop=("SECRET_KEY", "ALLOWED_HOSTS"))
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_it_starts_production_with_both_set(tmp_path: Path) -> None:
    result = _check(
        {
            "DJANGO_SETTINGS_MODULE": "tracker.settings.production",
            "SECRET_KEY": "a-long-random-production-secret-key-" + "z" * 30,
            "ALLOWED_HOSTS": "cobalt.example.org",
            "COBALT_VAR_DIR": str(tmp_path),
        }
    )
    assert result.returncode == 0, result.stderr
