"""The Celery application. Settings come from Django settings with the CELERY_ prefix."""

from __future__ import annotations

import os

from celery import Celery

# Production unless told otherwise, as tracker/wsgi.py (which imports this module first, through tracker/):
# `make run`, manage.py and the tests name their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings.production")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
