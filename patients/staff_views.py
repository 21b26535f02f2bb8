"""/api/staff/: clinic admins list, invite, change the role of, deactivate and reactivate their clinics'
staff. Thin: each action calls one service of patients/staff.py. A staff row is a clinic membership:
its id is the membership's, so the same person in two clinics is two rows."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from patients.models import ClinicMembership, Role
from patients.staff import (
    admin_clinic,
    admin_clinics,
    managed_memberships,
    staff_deactivate,
    staff_invite,
    staff_reactivate,
    staff_set_role,
)
from tracker.api import KnownQueryParameters, Ordering
from tracker.pages import site_url


class StaffSerializer(serializers.ModelSerializer[ClinicMembership]):
    user = serializers.IntegerField(source="user.id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    active = serializers.BooleanField(source="user.is_active", read_only=True)
    last_login = serializers.DateTimeField(
        source="user.last_login", read_only=True, allow_null=True, help_text="Last sign-in (null: never)."
    )

    class Meta:
        model = ClinicMembership
        fields = [
            "id",
            "clinic",
            "user",
            "username",
            "first_name",
            "last_name",
            "email",
            "role",
            "active",
            "last_login",
        ]
        read_only_fields = fields


class InviteSerializer(serializers.Serializer[Any]):
    clinic = serializers.IntegerField(required=False, help_text="Clinic id (default: your first clinic as admin).")
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")


class RoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class StaffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ClinicMembership]):
    """The staff of the clinics where you are a clinic admin."""

    serializer_class = StaffSerializer
    filter_backends = [KnownQueryParameters, DjangoFilterBackend, Ordering]
    filterset_fields = ["clinic", "role"]
    ordering_fields = ["id", "role"]

    queryset = ClinicMembership.objects.none()  # the schema's model; requests use get_queryset

    def get_queryset(self) -> QuerySet[ClinicMembership]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return managed_memberships(self.request.user).order_by("user__last_name", "user__username", "id")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not admin_clinics(request.user):
            raise PermissionDenied("Only a clinic admin may manage staff.")

    @extend_schema(request=InviteSerializer, responses={201: StaffSerializer}, summary="Invite a person")
    def create(self, request: Request) -> Response:
        """Add a person to the clinic's staff with a role and email them the link that sets their password."""
        body = InviteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        clinic = admin_clinic(request.user, data.get("clinic"), "invite staff")
        membership = staff_invite(
            clinic=clinic,
            email=data["email"],
            role=data["role"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            by=request.user,
            site_url=site_url(request._request),
        )
        return Response(StaffSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RoleSerializer, responses=StaffSerializer, summary="Change the role in this clinic")
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        body = RoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = staff_set_role(membership=self.get_object(), role=body.validated_data["role"], by=request.user)
        return Response(StaffSerializer(membership).data)

    @extend_schema(request=None, responses=StaffSerializer, summary="Deactivate: no sign-in, API token deleted")
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: Any = None) -> Response:
        membership = staff_deactivate(membership=self.get_object(), by=request.user)
        return Response(StaffSerializer(membership).data)

    @extend_schema(request=None, responses=StaffSerializer, summary="Reactivate a deactivated person")
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: Any = None) -> Response:
        membership = staff_reactivate(membership=self.get_object(), by=request.user)
        return Response(StaffSerializer(membership).data)
