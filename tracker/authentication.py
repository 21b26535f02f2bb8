"""Token authentication of every API call (DEFAULT_AUTHENTICATION_CLASSES). Its own module: DRF reads the
setting while importing rest_framework.views, which the token endpoint (tracker/auth.py) imports."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


def token_expired(token: Token) -> bool:
    return bool(token.created <= timezone.now() - settings.TOKEN_TTL)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>`, refusing (401) a token older than settings.TOKEN_TTL."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise AuthenticationFailed("Token has expired; ask POST /api/auth/token/ for a new one.")
        return user, token


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
