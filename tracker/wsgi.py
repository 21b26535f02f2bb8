"""The WSGI entry point (gunicorn). Production settings unless DJANGO_SETTINGS_MODULE says otherwise: a server
started without configuration refuses to start (no secret key) rather than serving with DEBUG on. `make run`
sets tracker.settings.base for local use."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings.production")
application = get_wsgi_application()
