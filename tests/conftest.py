"""Shared fixtures. The suite runs on PostgreSQL (DATABASE_URL); see README "Tests"."""

from __future__ import annotations

import os
import socket

import pytest


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a real service is missing, but fail loudly under CI."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run integration tests against real services.")
    pytest.skip(message)
