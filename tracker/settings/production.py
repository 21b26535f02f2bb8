"""Production settings: no defaults for secrets. Refuses to start without them, or with an email or SMS
backend that would print or keep messages instead of sending them (issue 12).

Transport security is on by default and configurable (docs/security.md): HTTPS redirect, HSTS, secure
cookies; `manage.py check --deploy` is clean with these defaults.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

for _name in ("SECRET_KEY", "ALLOWED_HOSTS"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"{_name} must be set in the environment for production.")

from tracker.settings.base import *  # noqa: E402,F403
from tracker.settings.base import COBALT, env  # noqa: E402

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto. Turn the redirect off only where the proxy
# itself redirects (COBALT_SSL_REDIRECT=false); HSTS tells browsers to use HTTPS for a year.
SECURE_SSL_REDIRECT = env.bool("COBALT_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("COBALT_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("COBALT_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("COBALT_HSTS_PRELOAD", default=True)
SESSION_COOKIE_HTTPONLY = True
# A shared clinic computer: the session ends when the browser closes, and after 8 hours at most.
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("COBALT_SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)
SESSION_COOKIE_AGE = env.int("COBALT_SESSION_COOKIE_AGE", default=8 * 3600)

# Clinicians, clinic admins and superusers confirm each web sign-in with an authenticator app's code.
COBALT["REQUIRE_SECOND_FACTOR"] = env.bool("COBALT_REQUIRE_SECOND_FACTOR", default=True)

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
# SMTP over TLS unless the relay is on the same host and says otherwise.
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)

# A console or memory backend "sends" by printing (the patient's number and text in the logs) or by keeping
# the message in a list, and marks it sent: refused unless explicitly allowed (a staging site without SMS).
TEST_BACKENDS = {
    "EMAIL_BACKEND": (
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
    ),
    "COBALT_SMS_BACKEND": ("console", "memory"),
}
if not env.bool("COBALT_ALLOW_TEST_BACKENDS", default=False):
    for _setting, _value in (("EMAIL_BACKEND", EMAIL_BACKEND), ("COBALT_SMS_BACKEND", str(COBALT["SMS_BACKEND"]))):
        if _value in TEST_BACKENDS[_setting]:
            raise ImproperlyConfigured(
                f"{_setting}={_value} does not send anything; configure a real backend for production "
                "(docs/delivery.md), or set COBALT_ALLOW_TEST_BACKENDS=true where messages must not leave."
            )
