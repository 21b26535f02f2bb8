"""COBALT settings of the reminders work, merged into settings.COBALT by tracker/settings/base.py.

Each entry: the RULES rule it comes from, and an env override COBALT_<KEY>. [P] numbers are
RULES proposals awaiting clinical sign-off (RULES §9). docs/reminders.md explains them to staff.
"""

from __future__ import annotations

import environ

env = environ.Env()

SETTINGS: dict[str, object] = {
    # --- Patient reminders) ---
    # RULES S-4: "Reminder 7 days before the due date"; the day-before reminder is a proposal [P].
    "REMINDER_MAINTENANCE_DAYS_BEFORE": env.list("COBALT_REMINDER_MAINTENANCE_DAYS_BEFORE", cast=int, default=[7, 1]),
    # [P]: loading doses come every few days, so only the day before.
    "REMINDER_LOADING_DAYS_BEFORE": env.list("COBALT_REMINDER_LOADING_DAYS_BEFORE", cast=int, default=[1]),
    # [P]: days before a lab recheck's window opens (RULES §2 windows).
    "REMINDER_RECHECK_DAYS_BEFORE": env.list("COBALT_REMINDER_RECHECK_DAYS_BEFORE", cast=int, default=[2]),
    # RULES S-4 [P]: the patient's follow-up when a clinic-given dose is this many days past due.
    # The staff dose_overdue alert has its own grace periods (OVERDUE_*_AFTER_DAYS, monitoring/sweep.py).
    "REMINDER_OVERDUE_AFTER_DAYS": env.int("COBALT_REMINDER_OVERDUE_AFTER_DAYS", default=1),
    # Issue 15 [P]: patients who take their doses at home (oral phases) get a note every this many months
    # from the first home dose, to keep to the plan (0 switches it off); their month-3 review is the L-11
    # recheck, reminded like every recheck. Not a RULES number: the clinical owner signs it off (RULES §9).
    "REMINDER_HOME_DOSE_EVERY_MONTHS": env.int("COBALT_REMINDER_HOME_DOSE_EVERY_MONTHS", default=1),
    # Local time (the patient's zone) at which reminders go out, and the quiet hours they never fall in.
    "REMINDER_LOCAL_TIME": env.str("COBALT_REMINDER_LOCAL_TIME", default="10:00"),
    "REMINDER_QUIET_START": env.str("COBALT_REMINDER_QUIET_START", default="21:00"),
    "REMINDER_QUIET_END": env.str("COBALT_REMINDER_QUIET_END", default="08:00"),
    # The reminders sweep writes rows whose send time is within this many hours ahead of now ...
    "REMINDER_LOOKAHEAD_HOURS": env.int("COBALT_REMINDER_LOOKAHEAD_HOURS", default=24),
    # ... and never one whose send time is more than this many hours past (the system was down).
    "REMINDER_STALE_HOURS": env.int("COBALT_REMINDER_STALE_HOURS", default=12),
    # --- Staff notifications) ---
    # Where staff open the links in their emails, e.g. https://cobalt.example.org (empty: relative links).
    "SITE_URL": env.str("COBALT_SITE_URL", default=""),
    # Medium alerts go out in one digest a day at this local time of the clinic.
    "STAFF_DIGEST_LOCAL_TIME": env.str("COBALT_STAFF_DIGEST_LOCAL_TIME", default="08:00"),
    # RULES §3.2 [P]: HIGH = "clinician review within 1 working day" -> escalate after 24 h unacknowledged.
    "ESCALATE_HIGH_AFTER_HOURS": env.int("COBALT_ESCALATE_HIGH_AFTER_HOURS", default=24),
    # RULES §3.2 [P]: CRITICAL = "interruptive; needs acknowledgement" -> escalate after 1 h.
    "ESCALATE_CRITICAL_AFTER_HOURS": env.int("COBALT_ESCALATE_CRITICAL_AFTER_HOURS", default=1),
}
