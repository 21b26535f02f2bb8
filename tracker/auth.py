"""The token endpoint, documented as integrators meet it: anonymous, JSON in, {token} out; and the token
authentication of every other API call.

Sign-in protection (issue 12, docs/security.md): the endpoint is throttled per client address
(TOKEN_THROTTLE_RATE) and shares django-axes' lockout with the web sign-in and the admin (a locked-out
username answers 429 with Retry-After, like the throttle); a token expires TOKEN_TTL after it was issued, and
a password change or deactivation deletes the user's token (revoke_tokens, connected in TrackerConfig.ready).
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from tracker.api import CheckedAPIView
from tracker.authentication import token_expired
from tracker.parsers import JSONObjectParser


class CredentialsSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>` on every other request.")


class TokenRateThrottle(SimpleRateThrottle):
    """Token requests per client address, at settings.TOKEN_THROTTLE_RATE (read on each request)."""

    scope = "auth-token"

    def get_rate(self) -> str | None:
        return str(settings.TOKEN_THROTTLE_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


THROTTLED = OpenApiResponse(
    description="Too many attempts from this address, or this username is locked out after wrong passwords: "
    '{"detail"}, with Retry-After (seconds).'
)


class ObtainTokenView(CheckedAPIView, ObtainAuthToken):
    """DRF's token view with a JSON body only (one request shape for generated clients); like every API view
    it refuses query parameters it does not read."""

    parser_classes = [JSONObjectParser]
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        auth=[],
        request=CredentialsSerializer,
        responses={200: TokenResponseSerializer, 429: THROTTLED},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Exchange a username and password for the user's API token: the same token until it expires
        (TOKEN_TTL, a week by default), then a new one. A password change or deactivation revokes it."""
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
            cooloff = settings.AXES_COOLOFF_TIME
            raise Throttled(
                wait=math.ceil(cooloff.total_seconds()),
                detail="Too many wrong passwords for this username: sign-in is locked for a while.",
            )
        if not valid:
            serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _created = Token.objects.get_or_create(user=user)
        if token_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key})


def revoke_tokens(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """pre_save of the user model: a new password or a deactivation deletes the user's API token (their
    sessions end on a password change already: Django checks the session's password hash)."""
    if raw or instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        Token.objects.filter(user_id=instance.pk).delete()


def connect_revocation() -> None:
    pre_save.connect(revoke_tokens, sender=get_user_model(), dispatch_uid="cobalt-revoke-tokens")
