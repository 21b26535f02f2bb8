"""Keep secret addresses out of the logs.

Some addresses are themselves the key to a patient's data: the calendar feed (/ical/<token>.ics), the
one-click unsubscribe link (/unsubscribe/<token>) and the portal's sign-in link (/me/sign-in/<token>).
Web server access logs and Django's "Not Found: <path>" warnings would keep them in clear text for
anyone who reads the logs. `RedactSecrets` rewrites such a record's message with the token replaced; it
is installed on the loggers that print request paths (gunicorn's access and error logs, django.request,
django.server) by TrackerConfig.ready, in every process that loads Django, gunicorn's workers included.
"""

from __future__ import annotations

import logging
import re

# The token runs to the next "/", "?", quote or space (the feed's ".ics" goes with it).
SECRET_PATHS = re.compile(r"(/ical/|/unsubscribe/|/me/sign-in/)([^/\s?\"']+)")
REDACTED = "[redacted]"
LOGGERS = ("gunicorn.access", "gunicorn.error", "django.request", "django.server")


def redact(text: str) -> str:
    return SECRET_PATHS.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        # Django's request logger also attaches the request; its path is not printed by our handlers.
        return True


_FILTER = RedactSecrets()


def install() -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
