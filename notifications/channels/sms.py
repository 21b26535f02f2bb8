"""SMS backends, chosen by COBALT SMS_BACKEND: console (default), memory (tests), http (Twilio-style)."""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from notifications.channels.base import PermanentError, TransientError

if TYPE_CHECKING:
    from notifications.models import Delivery


@dataclass(frozen=True)
class SentSms:
    to: str
    body: str


# The memory backend's sent messages, for tests.
outbox: list[SentSms] = []


def reset() -> None:
    outbox.clear()


def _require_number(delivery: Delivery) -> str:
    if not delivery.address:
        raise PermanentError("no phone number")
    return delivery.address


class ConsoleSms:
    def send(self, delivery: Delivery) -> str:
        to = _require_number(delivery)
        sys.stdout.write(f"SMS to {to}:\n{delivery.body}\n{'-' * 70}\n")
        sys.stdout.flush()
        return f"console:{delivery.pk}"


class MemorySms:
    def send(self, delivery: Delivery) -> str:
        outbox.append(SentSms(to=_require_number(delivery), body=delivery.body))
        return f"memory:{len(outbox)}"


class HttpSms:
    """POST To/From/Body (form-encoded, Basic auth) to COBALT SMS_HTTP_URL; the JSON answer's "sid" is the id."""

    def send(self, delivery: Delivery) -> str:
        cobalt = settings.COBALT
        url = str(cobalt["SMS_HTTP_URL"])
        if not url.startswith(("http://", "https://")):
            raise PermanentError("COBALT_SMS_HTTP_URL is not an http(s) URL")
        data = urllib.parse.urlencode(
            {"To": _require_number(delivery), "From": cobalt["SMS_HTTP_FROM"], "Body": delivery.body}
        ).encode()
        credentials = base64.b64encode(f"{cobalt['SMS_HTTP_ACCOUNT']}:{cobalt['SMS_HTTP_TOKEN']}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=data, method="POST", headers={"Authorization": f"Basic {credentials}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=float(str(cobalt["SMS_HTTP_TIMEOUT"]))) as response:  # noqa: S310
                payload = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(f"SMS provider HTTP {exc.code}") from exc
            raise PermanentError(f"SMS provider refused the message: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TransientError(f"cannot reach the SMS provider: {exc}") from exc
        return str(payload.get("sid", ""))


SMS_BACKENDS: dict[str, type[ConsoleSms | MemorySms | HttpSms]] = {
    "console": ConsoleSms,
    "memory": MemorySms,
    "http": HttpSms,
}


class SmsChannel:
    def send(self, delivery: Delivery) -> str:
        name = str(settings.COBALT["SMS_BACKEND"])
        if name not in SMS_BACKENDS:
            raise PermanentError(f"unknown COBALT_SMS_BACKEND '{name}' (known: {', '.join(SMS_BACKENDS)})")
        return SMS_BACKENDS[name]().send(delivery)
