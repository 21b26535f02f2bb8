"""The yardstick of the lab-result POST row of bench/results.py: a bare DRF create view over the same model (a
minimal ModelSerializer and CreateAPIView, the project's default authentication and IsAuthenticated), reached
through the same test client and middleware as `/api/lab-results/` (issue 16: "a bare create"). It checks no
clinic, converts and interprets nothing, re-plans and evaluates nothing. Routed only by bench/bare_urls.py,
which results.py installs as ROOT_URLCONF for that measurement alone; never part of the application."""

from __future__ import annotations

from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from patients.models import LabResult


class BareLabResultSerializer(serializers.ModelSerializer[LabResult]):
    # The same request body as /api/lab-results/ ("value", "unit"), stored as entered.
    value = serializers.CharField(source="value_as_entered", max_length=40)
    unit = serializers.CharField(source="unit_as_entered", max_length=30)

    class Meta:
        model = LabResult
        fields = ["id", "patient", "analyte", "value", "unit", "collected_at"]


class BareLabResultCreate(generics.CreateAPIView[LabResult]):
    serializer_class = BareLabResultSerializer
    permission_classes = [IsAuthenticated]
    queryset = LabResult.objects.all()
