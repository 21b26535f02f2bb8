"""The token endpoint, documented as integrators meet it: anonymous, JSON in, {token} out; signing out (the
presented token revoked); and the revocation of every token of a user whose password changed or who was
deactivated.

Sign-in protection (issue 12, docs/security.md): the endpoint is throttled per client address
(TOKEN_THROTTLE_RATE) and shares django-axes' lockout with the web sign-in and the admin (a locked-out
username answers 429 with Retry-After, like the throttle). Tokens are django-rest-knox's, stored as a digest
only (tracker/authentication.py): each request issues a new key, valid TOKEN_TTL; a password change or
deactivation deletes all of the user's tokens (revoke_tokens, connected in TrackerConfig.ready). Whoever the
web sign-in asks for a second factor (tracker/two_factor.py) must send `otp_token` here too; a missing or
wrong code counts towards the lockout like a wrong password.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import pre_save
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from tracker.api import CheckedAPIView
from tracker.authentication import ExpiringTokenAuthentication, token_issue, token_revoke_all
from tracker.parsers import JSONObjectParser
from tracker.two_factor import token_second_factor

OTP_PATTERN = re.compile(r"[0-9]{6}", re.ASCII)


class CredentialsSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp_token = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text=(
            "The 6-digit code of the user's authenticator app (TOTP). Required of clinicians, clinic admins and "
            "superusers when the second factor is on (COBALT_REQUIRE_SECOND_FACTOR), and of anyone who has set "
            "an app up; a 400 names this field when it is missing or wrong."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(request=self.context.get("request"), username=attrs["username"], password=attrs["password"])
        if not user:
            raise serializers.ValidationError("Unable to log in with provided credentials.", code="authorization")
        attrs["user"] = user
        return attrs


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
    description="Too many attempts from this address, or this username is locked out after wrong passwords or "
    'second-factor codes: {"detail"}, with Retry-After (seconds).'
)
CREDENTIALS_REFUSED = OpenApiResponse(
    description='Wrong username or password ({"non_field_errors": [reason]}), or the second factor is missing '
    'or wrong ({"otp_token": [reason]}), or a field is missing.'
)


def _locked_out(request: Request) -> bool:
    return bool(getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False))


def _lockout() -> Throttled:
    return Throttled(
        wait=math.ceil(settings.AXES_COOLOFF_TIME.total_seconds()),
        detail="Too many wrong passwords for this username: sign-in is locked for a while.",
    )


def _second_factor_problem(user: Any, code: str) -> str | None:
    """Why the second factor stops this user getting a token (None: not needed, or the code is right)."""
    required, device = token_second_factor(user)
    if not required:
        return None
    if device is None:
        return (
            "is required for your role, and you have no authenticator app yet: sign in on the web once to set "
            "it up (/login/two-factor/), then send its 6-digit code here"
        )
    if not code:
        return "is required: send the 6-digit code your authenticator app shows"
    if not OTP_PATTERN.fullmatch(code) or not device.verify_token(code):
        return "is not right or has expired: send the 6-digit code your authenticator app shows now"
    return None


class ObtainTokenView(CheckedAPIView):
    """The token endpoint, JSON body only (one request shape for generated clients); like every API view it
    refuses query parameters it does not read."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes = [JSONObjectParser]
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        auth=[],
        request=CredentialsSerializer,
        responses={200: TokenResponseSerializer, 400: CREDENTIALS_REFUSED, 429: THROTTLED},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Exchange a username and password (and, where the web sign-in asks for one, the authenticator
        app's code in `otp_token`) for a new API token, valid for TOKEN_TTL (a week by default). Each call
        issues a new token; earlier ones keep working until they expire or are revoked (sign-out, a password
        change, a deactivation)."""
        serializer = CredentialsSerializer(data=request.data, context={"request": request})
        valid = serializer.is_valid()
        if _locked_out(request):
            raise _lockout()
        if not valid:
            serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        problem = _second_factor_problem(user, serializer.validated_data.get("otp_token", "").strip())
        if problem is not None:
            # Counted like a wrong password (django-axes listens to user_login_failed).
            user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
            if _locked_out(request):
                raise _lockout()
            raise serializers.ValidationError({"otp_token": [problem]})
        key = token_issue(user)
        # A sign-in like the web's: audited (patients' StaffEvent listener) and the user's last sign-in updated;
        # `api_token` tells the session's second-factor bookkeeping that no session is signing in.
        session = request._request.session
        had_session = session.session_key is not None
        user_logged_in.send(sender=user.__class__, request=request._request, user=user, api_token=True)
        if not had_session:
            session.flush()  # django-axes' access log creates a session to hash: the API client gets no cookie
        return Response({"token": key})


class SignOutView(CheckedAPIView):
    """Revoke the token the request is authenticated with."""

    authentication_classes = [ExpiringTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: OpenApiResponse(description="The token no longer works.")})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Sign out: the token sent in `Authorization: Token <key>` is deleted at once (401 from then on).
        The user's other tokens keep working."""
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


def revoke_tokens(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """pre_save of the user model: a new password or a deactivation deletes every API token of the user
    (their sessions end on a password change already: Django checks the session's password hash)."""
    if raw or instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        token_revoke_all(instance.pk)


def connect_revocation() -> None:
    pre_save.connect(revoke_tokens, sender=get_user_model(), dispatch_uid="cobalt-revoke-tokens")
