"""Import lab results from a CSV file (columns in docs/lab-results.md); same code as the API import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from patients.labs.importer import import_lab_results
from patients.models import Clinic
from tracker.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Imports lab results from a CSV file for one clinic's patients (looked up by MRN). Every row is checked "
        "first; with any error nothing is written, unless --keep-valid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file, UTF-8, with a header row.")
        parser.add_argument("--clinic", required=True, help="Clinic name or id whose MRNs the file uses.")
        parser.add_argument("--keep-valid", action="store_true", help="Write the valid rows even if others fail.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def _clinic(self, value: str) -> Clinic:
        clinic = Clinic.objects.filter(pk=int(value)).first() if value.isdigit() else None
        clinic = clinic or Clinic.objects.filter(name__iexact=value.strip()).first()
        if clinic is None:
            names = ", ".join(f"{c.pk}: {c.name}" for c in Clinic.objects.order_by("name")[:20])
            raise CommandError(f"--clinic: no clinic {value!r}. Clinics: {names or 'none'}.")
        return clinic

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}") from exc
        clinic = self._clinic(options["clinic"])
        bars: dict[str, tqdm[Any]] = {}
        stream = getattr(self.stderr, "_out", sys.stderr)

        def progress(stage: str, done: int, total: int) -> None:
            if options["no_progress"]:
                return
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=stage.capitalize(), unit="row", file=stream, leave=True)
            bar.update(done - bar.n)

        try:
            report = import_lab_results(data=data, clinic=clinic, keep_valid=options["keep_valid"], progress=progress)
        except ServiceError as exc:
            raise CommandError(f"{path}: {exc.message}") from exc
        finally:
            for bar in bars.values():
                bar.close()
        for error in report.errors:
            self.stdout.write(f"row {error.row}, {error.field}: {error.message}")
        summary = f"{report.rows} rows read, {report.created} results written, {len(report.errors)} errors"
        if report.created:
            self.stdout.write(self.style.SUCCESS(f"{summary} (import batch {report.import_batch})."))
            return
        if report.errors and not options["keep_valid"]:
            summary += "; nothing was written (use --keep-valid to write the valid rows)"
        raise CommandError(f"{summary}.")
