"""CSV downloads: cells a spreadsheet would run as formulas are written as text."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

from tracker.exports import csv_response, neutralise


def test_text_that_starts_like_a_formula_is_written_as_text() -> None:
    for dangerous in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralise(dangerous) == "'" + dangerous


def test_ordinary_values_are_written_as_they_are() -> None:
    assert neutralise("Okafor") == "Okafor"
    assert neutralise(-3) == -3
    assert neutralise(Decimal("1.5")) == Decimal("1.5")
    assert neutralise(datetime.date(2027, 1, 4)) == "2027-01-04"
    assert neutralise(None) == ""


def test_the_download_is_a_utf8_csv_with_a_header_and_no_caching() -> None:
    response = csv_response("worklist.csv", ["name", "note"], [["Ñúñez", "=1+1"]])
    assert response["Content-Disposition"] == 'attachment; filename="worklist.csv"'
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [["name", "note"], ["Ñúñez", "'=1+1"]]
