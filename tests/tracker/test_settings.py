"""Production settings refuse to start without secrets; the default settings need nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _check(
    env_overrides: dict[str, str], drop: tuple[str, ...] = (), fail_level: str = "CRITICAL"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", fail_level],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _load(env_overrides: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Import the settings module alone, where production refuses what it refuses: a tenth of `_check`'s time,
    which also starts Django and runs every system check."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", f"import {env['DJANGO_SETTINGS_MODULE']}"],
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


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "tracker.settings.production",
    "SECRET_KEY": "a-long-random-production-secret-key-" + "z" * 30,
    "ALLOWED_HOSTS": "cobalt.example.org",
    "COBALT_SMS_BACKEND": "http",
}
SECURITY_SETTINGS = ("EMAIL_BACKEND", "COBALT_SMS_BACKEND", "COBALT_ALLOW_TEST_BACKENDS", "COBALT_SSL_REDIRECT",
                     "COBALT_HSTS_SECONDS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")  # fmt: skip


def test_it_starts_production_with_both_set_and_check_deploy_is_clean(tmp_path: Path) -> None:
    # --fail-level WARNING: `check --deploy` has nothing to say about the production settings (HSTS, HTTPS
    # redirect, secure cookies, DEBUG off; issue 12).
    env = {**PRODUCTION, "COBALT_VAR_DIR": str(tmp_path)}
    result = _check(env, drop=SECURITY_SETTINGS, fail_level="WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("setting", "value"),
    [("COBALT_SMS_BACKEND", "console"), ("COBALT_SMS_BACKEND", "memory"),
     ("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"),
     ("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")],
)  # fmt: skip
def test_production_refuses_a_backend_that_sends_nothing(tmp_path: Path, setting: str, value: str) -> None:
    env = {**PRODUCTION, "COBALT_VAR_DIR": str(tmp_path), setting: value}
    refused = _load(env, drop=SECURITY_SETTINGS)
    assert refused.returncode != 0
    assert f"{setting}={value} does not send anything" in refused.stderr
    allowed = _load({**env, "COBALT_ALLOW_TEST_BACKENDS": "true"}, drop=SECURITY_SETTINGS)
    assert allowed.returncode == 0, allowed.stderr


def test_production_sms_defaults_to_nothing_that_prints(tmp_path: Path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "COBALT_SMS_BACKEND"}
    result = _load({**env, "COBALT_VAR_DIR": str(tmp_path)}, drop=SECURITY_SETTINGS)
    assert result.returncode != 0
    assert "COBALT_SMS_BACKEND=console does not send anything" in result.stderr


def test_the_wsgi_and_asgi_entry_points_default_to_production_settings() -> None:
    for module in ("tracker.wsgi", "tracker.asgi"):
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY")}
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        # Without a secret key, production settings refuse to start: they were the ones loaded.
        assert result.returncode != 0, module
        assert "SECRET_KEY must be set in the environment for production" in result.stderr, module


def test_production_requires_the_second_factor_by_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SECURITY_SETTINGS + ("COBALT_REQUIRE_SECOND_FACTOR",)}
    env.update({**PRODUCTION, "COBALT_VAR_DIR": str(tmp_path)})
    script = "from django.conf import settings; print(settings.COBALT['REQUIRE_SECOND_FACTOR'])"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr
