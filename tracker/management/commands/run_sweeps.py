"""Run every periodic sweep once, as of a given time (default: now)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tracker import sweeps


class Command(BaseCommand):
    help = (
        "Runs every periodic sweep once, as of --at (ISO 8601; default now). Same code as Celery beat, except "
        "that the outbox sweep sends the deliveries due by then itself instead of queueing them for a worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="ISO 8601 date-time, e.g. 2027-01-04T09:00:00+00:00")
        parser.add_argument("--only", action="append", help="Run only this sweep (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        at = timezone.now()
        if options["at"]:
            try:
                at = datetime.fromisoformat(options["at"])
            except ValueError as exc:
                raise CommandError(f"--at: '{options['at']}' is not an ISO 8601 date-time.") from exc
            if timezone.is_naive(at):
                raise CommandError("--at: give a time zone offset, e.g. 2027-01-04T09:00:00+00:00.")
        available = sweeps.load()
        names = options["only"] or list(available)
        for name in names:
            if name not in available:
                raise CommandError(f"--only: unknown sweep '{name}'. Known: {', '.join(available)}.")
            with sweeps.delivering_inline():
                result = available[name](at)
            summary = ", ".join(f"{k}={v}" for k, v in result.items()) or "nothing to do"
            self.stdout.write(f"{name}: {summary}")
