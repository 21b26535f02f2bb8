"""`manage.py seed_demo`: load the demo (tracker/demo/) with a progress bar, then print the logins."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tracker import demo, events


class Command(BaseCommand):
    help = (
        "Creates a demo: two clinics, staff logins, an admin superuser and ~40 patients on all built-in "
        "protocols at different stages. Safe to run twice (creates nothing that already exists)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=40, help="How many patients (default 40).")
        parser.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")
        parser.add_argument(
            "--allow-production", action="store_true", help="Run even with production settings (never do this)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Under override_settings (tests, a live server) SETTINGS_MODULE reads None: the environment still names it.
        module = settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE", "")
        if module.endswith(".production") and not options["allow_production"]:
            # The demo creates a superuser with a published password.
            raise CommandError("seed_demo refuses to run with production settings.")
        count = options["patients"]
        if count < 0:
            raise CommandError("--patients must be 0 or more.")

        def progress(seeds: Sequence[demo.PatientSeed]) -> Iterable[demo.PatientSeed]:
            return tqdm(
                seeds, desc="Patients", unit="patient", file=self.stderr, disable=options["no_progress"], leave=True
            )

        try:
            # The monitoring rules run as each patient is written (not in a worker), so the summary below counts
            # the alerts they open.
            with events.at_once():
                result = demo.seed(patients=count, progress=progress)
        except demo.DemoError as error:
            raise CommandError(str(error)) from error

        self.print_logins(result.logins)
        self.stdout.write(f"Patients created: {result.created}, already there: {result.skipped}.")
        self.stdout.write(self.summary())

    def print_logins(self, logins: Sequence[demo.Login]) -> None:
        self.stdout.write("")
        self.stdout.write("Demo logins (web app and /admin/):")
        for row in _table(logins, ("username", "password", "role", "clinic")):
            self.stdout.write("  " + row)
        self.stdout.write("")

    def summary(self) -> str:
        c = demo.summary_counts()
        return (
            f"Summary: {c['patients']} patients, {c['regimens']} regimens; doses {c['given']} given, "
            f"{c['planned']} planned ({c['overdue']} overdue), {c['not_given']} not given; "
            f"{c['results']} lab results, {c['alerts']} open alerts."
        )


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [row.rstrip() for row in out]
