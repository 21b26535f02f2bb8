"""COBALT settings of the delivery work, merged into settings.COBALT by tracker/settings/base.py.

Each entry has an env override COBALT_<KEY>. None of these is a clinical number; docs/delivery.md explains them.
"""

from __future__ import annotations

import environ

env = environ.Env()

SETTINGS: dict[str, object] = {
    # A transient failure (SMTP 4xx, timeout, HTTP 5xx) is retried after BACKOFF * 2**(attempt-1) seconds,
    # capped at BACKOFF_MAX; after MAX_ATTEMPTS attempts the delivery fails and staff are alerted.
    "DELIVERY_MAX_ATTEMPTS": env.int("COBALT_DELIVERY_MAX_ATTEMPTS", default=5),
    "DELIVERY_BACKOFF_SECONDS": env.int("COBALT_DELIVERY_BACKOFF_SECONDS", default=60),
    "DELIVERY_BACKOFF_MAX_SECONDS": env.int("COBALT_DELIVERY_BACKOFF_MAX_SECONDS", default=3600),
    # A row claimed ("sending") for longer than this is taken to belong to a dead worker and is sent again.
    "DELIVERY_LEASE_SECONDS": env.int("COBALT_DELIVERY_LEASE_SECONDS", default=300),
    # SMS: "console" prints (make run), "memory" keeps them in a list (tests), "http" posts to a provider.
    "SMS_BACKEND": env.str("COBALT_SMS_BACKEND", default="console"),
    "SMS_HTTP_URL": env.str("COBALT_SMS_HTTP_URL", default=""),
    "SMS_HTTP_ACCOUNT": env.str("COBALT_SMS_HTTP_ACCOUNT", default=""),
    "SMS_HTTP_TOKEN": env.str("COBALT_SMS_HTTP_TOKEN", default=""),
    "SMS_HTTP_FROM": env.str("COBALT_SMS_HTTP_FROM", default="Cobalt"),
    "SMS_HTTP_TIMEOUT": env.float("COBALT_SMS_HTTP_TIMEOUT", default=10.0),
    # Patients' texts (STOP, START, HELP) reach POST /hooks/sms/inbound/ signed with this shared secret
    # (X-Cobalt-Signature: hex HMAC-SHA256 of the request body). Empty: every inbound text is refused.
    "SMS_INBOUND_SECRET": env.str("COBALT_SMS_INBOUND_SECRET", default=""),
    # The patient portal (/me/): a sign-in link works once and for this many minutes; a portal session
    # ends this many minutes after sign-in.
    "PORTAL_LINK_MINUTES": env.int("COBALT_PORTAL_LINK_MINUTES", default=30),
    "PORTAL_SESSION_MINUTES": env.int("COBALT_PORTAL_SESSION_MINUTES", default=30),
}
