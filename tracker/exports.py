"""CSV downloads of the web pages (worklist, calendar, patient list, audit log).

Spreadsheet programs run a cell that starts with `=`, `+`, `-` or `@` (and tab or carriage return) as
a formula; a patient's name or a note typed by anyone could then run code on a nurse's computer (CSV
injection). Every text cell that starts with one of them is written with a leading apostrophe, which
spreadsheets show as text. Numbers, dates and times are written as they are.
"""

from __future__ import annotations

import csv
import datetime
import decimal
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """`value` safe for a spreadsheet cell: text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | decimal.Decimal | datetime.date | datetime.datetime):
        return value.isoformat() if isinstance(value, datetime.date) else value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    """A CSV download (UTF-8 with a byte-order mark, which Excel needs to read accents) of `rows`."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return response
