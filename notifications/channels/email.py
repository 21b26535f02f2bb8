"""Email through Django's configured EMAIL_BACKEND (SMTP in production, console in `make run`)."""

from __future__ import annotations

import smtplib
from email.utils import make_msgid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.utils import DNS_NAME

from notifications.channels.base import PermanentError, TransientError
from notifications.unsubscribe import email_body, email_headers

if TYPE_CHECKING:
    from notifications.models import Delivery


def _smtp_code(exc: smtplib.SMTPException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return max(codes) if codes else None
    if isinstance(exc, smtplib.SMTPResponseException):
        return int(exc.smtp_code)
    return None


class EmailChannel:
    def send(self, delivery: Delivery) -> str:
        if not delivery.address:
            raise PermanentError("no email address")
        message_id = make_msgid(idstring=f"cobalt-delivery-{delivery.pk}", domain=DNS_NAME.get_fqdn())
        message = EmailMessage(
            subject=delivery.subject,
            body=email_body(delivery),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.address],
            # A patient's email also carries one-click unsubscribe and the clinic's Reply-To.
            headers={
                "Message-ID": message_id,
                "X-Cobalt-Delivery": delivery.idempotency_key,
                **email_headers(delivery),
            },
            connection=get_connection(fail_silently=False),
        )
        try:
            message.send()
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientError(f"SMTP server disconnected: {exc}") from exc
        except smtplib.SMTPException as exc:
            code = _smtp_code(exc)
            if code is not None and 500 <= code < 600:
                raise PermanentError(f"SMTP {code}: {exc}") from exc
            raise TransientError(f"SMTP {code or 'error'}: {exc}") from exc
        except OSError as exc:  # refused connection, timeout, DNS
            raise TransientError(f"cannot reach the mail server: {exc}") from exc
        return message_id
