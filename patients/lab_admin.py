"""Admin for lab results, medications and patient facts (monitoring work). Imported by patients/admin.py."""

from __future__ import annotations
