"""Test settings: PostgreSQL from DATABASE_URL (the default in `make test`), fast hashing."""

from __future__ import annotations

from tracker.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False
# DRF's test client sends multipart unless told otherwise; the API takes JSON bodies only.
REST_FRAMEWORK = {**REST_FRAMEWORK, "TEST_REQUEST_DEFAULT_FORMAT": "json"}  # noqa: F405
# One process's counters, never a Redis left over from another run; the token throttle's own test lowers it.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TOKEN_THROTTLE_RATE = "10000/minute"  # noqa: S105 (a rate, not a password)
# The suite signs clinicians in with a password only; tests/security/test_two_factor.py turns the factor on.
COBALT = {**COBALT, "REQUIRE_SECOND_FACTOR": False}  # noqa: F405
# The rules run in the request that writes (after its commit), as the web pages run them: the suite reads the
# alerts a write opens at once. tests/monitoring/test_evaluation_queue.py runs them through the queue, and
# tests/integration/test_evaluation_queue_real.py through a real worker.
COBALT["EVALUATE_IN_WORKER"] = False
