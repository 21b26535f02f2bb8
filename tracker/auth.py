"""The token endpoint, documented as integrators meet it: anonymous, JSON in, {token} out."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from tracker.api import CheckedAPIView
from tracker.parsers import JSONObjectParser


class CredentialsSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>` on every other request.")


class ObtainTokenView(CheckedAPIView, ObtainAuthToken):
    """DRF's token view with a JSON body only (one request shape for generated clients); like every API view
    it refuses query parameters it does not read."""

    parser_classes = [JSONObjectParser]

    @extend_schema(auth=[], request=CredentialsSerializer, responses={200: TokenResponseSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Exchange a username and password for the user's API token (the same token on every call)."""
        return super().post(request, *args, **kwargs)
