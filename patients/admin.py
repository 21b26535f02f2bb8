from __future__ import annotations

from patients import lab_admin  # noqa: F401  (registers the monitoring models)
