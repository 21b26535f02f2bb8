"""Token authentication of every API call (DEFAULT_AUTHENTICATION_CLASSES). Its own module: DRF reads the
setting while importing rest_framework.views, which the token endpoint (tracker/auth.py) imports.

API tokens are django-rest-knox's (`knox.AuthToken`): the database keeps a SHA-512 digest of each key and
its first 15 characters (to find the row), never the key itself, so a copy of the database holds no usable
token. The header is unchanged: `Authorization: Token <key>`.
"""

from __future__ import annotations

from datetime import timedelta
from hmac import compare_digest
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.exceptions import AuthenticationFailed

from tracker.permissions import remember_clinic_ids, with_clinic_ids

INVALID = "Invalid token."
EXPIRED = "Token has expired; ask POST /api/auth/token/ for a new one."


def token_issue(user: Any) -> str:
    """A new API token for the user, valid for settings.TOKEN_TTL; the key is returned once and only its
    digest is stored. The user's expired tokens are deleted on the way."""
    AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
    ttl: timedelta = settings.TOKEN_TTL
    _row, key = AuthToken.objects.create(user=user, expiry=ttl)
    return str(key)


def token_revoke_all(user_id: int) -> None:
    """Delete every API token of the user (password change, deactivation)."""
    AuthToken.objects.filter(user_id=user_id).delete()


class ExpiringTokenAuthentication(TokenAuthentication):
    """knox's `Authorization: Token <key>`: the key's digest must match a stored one; a token past its expiry
    is deleted and refused (401 "Token has expired"), as is one of a deactivated user. A malformed key is a
    401, never a 500 (knox decodes the header as UTF-8 without catching the error)."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        try:
            key = token.decode("utf-8")
        except UnicodeError:
            raise AuthenticationFailed(INVALID) from None
        candidates = AuthToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
        # The user's clinics come with the token: the permission check and the clinic scoping read no membership.
        candidates = with_clinic_ids(candidates, "user")
        digest = hash_token(key)
        for row in candidates:
            if not compare_digest(digest, row.digest):
                continue
            if row.expiry is not None and row.expiry <= timezone.now():
                row.delete()
                raise AuthenticationFailed(EXPIRED)
            user, _ = self.validate_user(row)
            remember_clinic_ids(user, row)
            return user, row
        raise AuthenticationFailed(INVALID)


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check (AUTHENTICATION_BACKENDS, before ModelBackend) for every sign-in that comes
    with a request: the web pages, the admin and the token endpoint all pass theirs. A call without one (the
    test client's login(), a management command) has no address to lock and is left to ModelBackend, instead
    of axes' ValueError."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
