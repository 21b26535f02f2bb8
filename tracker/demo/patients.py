"""The demo patients: ~40 people on every built-in protocol, each with a story (just started, running,
enrolled from elsewhere, late, ended or stopped) walked through day by day up to today.

Every regimen, dose and decision is written through regimens/services.py, exactly as the product
would have written it, so the demo data can never show a state the product cannot reach. Histories
are built relative to today (services refuse start dates more than a year away and administrations
in the future). Patients are keyed on MRN: the caller skips one who already exists.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from patients.models import Clinic, FactKind, Patient, PatientFact, Role
from regimens import services
from regimens.models import DoseStatus, Protocol, Regimen, RegimenStatus, ScheduledDose
from regimens.protocol_data import PROTOCOLS
from tracker import events
from tracker.clock import patient_today
from tracker.demo import labs
from tracker.demo.clinics import CLINICS

GIVEN_NAMES = {
    "female": [
        "Margaret",
        "Susan",
        "Aoife",
        "Fatima",
        "Eleanor",
        "Joan",
        "Mei",
        "Olivia",
        "Niamh",
        "Sarah",
        "Patricia",
        "Zainab",
        "Linda",
        "Ruth",
        "Chloe",
        "Ingrid",
        "Amelia",
        "Beatrice",
        "Gloria",
        "Hannah",
    ],
    "male": [
        "George",
        "Arthur",
        "Rajesh",
        "Kevin",
        "Liam",
        "Peter",
        "Samuel",
        "Kwame",
        "Oliver",
        "Declan",
        "Harold",
        "Tariq",
        "Michael",
        "Dennis",
        "Callum",
        "Yusuf",
        "Graham",
        "Victor",
        "Ethan",
        "Frank",
    ],
}
FAMILY_NAMES = [
    "Ashworth",
    "Bennett",
    "Chowdhury",
    "Donnelly",
    "Evans",
    "Fletcher",
    "Gallagher",
    "Hussain",
    "Iqbal",
    "Jenkins",
    "Kowalski",
    "Lloyd",
    "McCarthy",
    "Nwosu",
    "O'Brien",
    "Patel",
    "Quinn",
    "Robertson",
    "Singh",
    "Thompson",
    "Underwood",
    "Vaughan",
    "Whitfield",
    "Yilmaz",
    "Zhang",
    "Abbott",
    "Brennan",
    "Clarke",
    "Dunmore",
    "Ellison",
]

IM_SITES = [
    "left deltoid",
    "right deltoid",
    "left vastus lateralis",
    "right vastus lateralis",
    "left ventrogluteal",
    "right ventrogluteal",
]
CLINIC_REASONS = ["did not attend", "did not attend", "patient refused", "held: clinician decision"]
ORAL_REASONS = ["missed: patient forgot", "patient refused", "held: clinician decision"]


@dataclass(frozen=True)
class Story:
    """One patient's course so far, in days before today."""

    label: str
    start_ago: int
    # Doses due on or after this many days ago are left alone: still planned, and overdue when past.
    stop_ago: int = 0
    # The most recent past-due doses left planned (overdue); counted, not dated, because clinic
    # days and month lengths move due dates around.
    overdue: int = 0
    miss_rate: float = 0.0
    late_rate: float = 0.15
    enrol_phase: str | None = None
    enrol_last_ago: int = 0
    confirm_gate: bool = False
    end_phase_ago: int | None = None
    end_note: str = ""
    stop_reason: str = ""
    # RULES R-UK-4: the clinician shortened the interval of the phase in progress today (to this many of its units).
    shorten_to: int | None = None
    shorten_reason: str = ""
    options: dict[str, Any] = field(default_factory=dict)


# Four stories per built-in protocol: every protocol has a just-started, a running and an
# established (often enrolled-from-elsewhere) patient, plus a late or special case.
STORIES: dict[str, list[Story]] = {
    "hydroxo-uk-standard": [
        Story("just started", start_ago=2),
        Story("mid-loading, one missed", start_ago=8, miss_rate=0.3),
        Story(
            "maintenance, interval shortened",
            start_ago=200,
            miss_rate=0.1,
            shorten_to=8,
            shorten_reason="Fatigue and tingling come back in the weeks before each injection.",
        ),
        Story("enrolled, maintenance overdue", start_ago=3, enrol_phase="maintenance", enrol_last_ago=90, overdue=1),
    ],
    "hydroxo-uk-neuro": [
        Story("loading", start_ago=20, miss_rate=0.05),
        Story(
            "loading ended, maintenance",
            start_ago=80,
            end_phase_ago=40,
            end_note="No further neurological improvement at review; start maintenance.",
        ),
        Story("enrolled, maintenance", start_ago=5, enrol_phase="maintenance", enrol_last_ago=30),
        Story("loading, doses overdue", start_ago=12, overdue=2),
    ],
    "cyano-us-label": [
        Story("waiting at reticulocyte gate", start_ago=18),
        Story("past the gate, monthly", start_ago=150, confirm_gate=True, miss_rate=0.05),
        Story("first dose today", start_ago=0),
        Story("enrolled, monthly", start_ago=4, enrol_phase="monthly", enrol_last_ago=20),
    ],
    "hydroxo-us-label": [
        Story("daily", start_ago=4),
        Story("monthly", start_ago=250, miss_rate=0.15),
        Story(
            "stopped: moved away",
            start_ago=180,
            stop_ago=40,
            stop_reason="Moved to another practice; care handed over.",
        ),
        Story("enrolled, monthly overdue", start_ago=2, enrol_phase="monthly", enrol_last_ago=36, overdue=1),
    ],
    "cyano-1000-us": [
        Story("daily", start_ago=5),
        Story("weekly", start_ago=25, miss_rate=0.1),
        Story("monthly", start_ago=220, miss_rate=0.1),
        Story("monthly, overdue", start_ago=150, overdue=1),
    ],
    "cyano-1000-weekly": [
        Story("just started", start_ago=1),
        Story("weekly", start_ago=40, miss_rate=0.15),
        Story("monthly", start_ago=300, miss_rate=0.1),
        Story("enrolled, monthly", start_ago=6, enrol_phase="monthly", enrol_last_ago=25),
    ],
    "oral-high-dose": [
        Story("just started", start_ago=6),
        Story("a month in, some missed", start_ago=30, miss_rate=0.08),
        Story(
            "ended at the 3-month review",
            start_ago=100,
            miss_rate=0.03,
            end_phase_ago=8,
            end_note="3-month review: B12 and blood count normal; oral treatment ended.",
        ),
        Story("not recording doses", start_ago=20, overdue=3),
    ],
    "ileal-resection": [
        Story("first dose", start_ago=3),
        Story("lifelong monthly", start_ago=280, miss_rate=0.15),
        Story("enrolled", start_ago=7, enrol_phase="monthly", enrol_last_ago=25),
        Story("monthly, overdue", start_ago=127, overdue=1),
    ],
    "bariatric-oral": [
        Story("starts today", start_ago=0),
        Story("a week in", start_ago=7, miss_rate=0.1),
        Story("enrolled", start_ago=2, enrol_phase="oral", enrol_last_ago=1),
        Story("not recording doses", start_ago=6, overdue=2),
    ],
    "diet-oral": [
        Story("started", start_ago=9),
        Story("enrolled", start_ago=3, enrol_phase="oral", enrol_last_ago=1),
        Story(
            "diet corrected, ended",
            start_ago=42,
            end_phase_ago=5,
            miss_rate=0.05,
            end_note="Dietary intake corrected (fortified foods); levels normal. Oral supplement ended.",
        ),
        Story("three weeks, some missed", start_ago=21, miss_rate=0.1),
    ],
}

# Causes that fit each protocol (RULES "Deficiency causes"); the first is the most common.
CAUSES: dict[str, list[str]] = {
    "hydroxo-uk-standard": ["pernicious_anemia", "autoimmune_gastritis", "pernicious_anemia", "gastrectomy"],
    "hydroxo-uk-neuro": ["pernicious_anemia", "nitrous_oxide", "pernicious_anemia", "autoimmune_gastritis"],
    "cyano-us-label": ["pernicious_anemia"],
    "hydroxo-us-label": ["pernicious_anemia", "autoimmune_gastritis"],
    "cyano-1000-us": ["pernicious_anemia", "gastrectomy", "ileal_disease"],
    "cyano-1000-weekly": ["pernicious_anemia", "autoimmune_gastritis", "unknown"],
    "oral-high-dose": ["metformin", "acid_suppression", "metformin", "other"],
    "ileal-resection": ["ileal_resection"],
    "bariatric-oral": ["bariatric_surgery"],
    "diet-oral": ["diet"],
}
US_PROTOCOLS = {"cyano-us-label", "hydroxo-us-label", "cyano-1000-us", "cyano-1000-weekly"}


@dataclass(frozen=True)
class PatientSeed:
    index: int
    clinic_slug: str
    mrn: str
    given_name: str
    family_name: str
    sex: str
    birth_date: date
    email: str
    phone: str
    timezone: str
    cause: str
    neuro: bool
    channel: str
    protocol_code: str
    language: str  # the patient's language for reminders, the portal and the card: "en" or "es"
    story: Story
    # Drawn up front so the walk through the doses is the same whichever patients already exist.
    walk_seed: int


def protocol_codes() -> list[str]:
    return [p["code"] for p in PROTOCOLS]


def build_patient_seeds(count: int, rng: random.Random) -> list[PatientSeed]:
    """Every patient's facts and story, decided before anything is written (deterministic)."""
    codes = protocol_codes()
    seeds = []
    used_names: set[tuple[str, str]] = set()
    for i in range(count):
        code = codes[i % len(codes)]
        stories = STORIES[code]
        story = stories[(i // len(codes)) % len(stories)]
        clinic = CLINICS[0] if i % 3 != 2 else CLINICS[1]
        sex = rng.choice(["female", "female", "male", "male", "female", "other"]) if i % 17 else "unknown"
        name_sex = sex if sex in GIVEN_NAMES else rng.choice(["female", "male"])
        while True:
            given, family = rng.choice(GIVEN_NAMES[name_sex]), rng.choice(FAMILY_NAMES)
            if (given, family) not in used_names or len(used_names) > 500:
                break
        used_names.add((given, family))
        # Adults only (RULES scope is 16 and over); B12 deficiency skews older.
        age = rng.choice([rng.randint(18, 45), rng.randint(45, 70), rng.randint(60, 92)])
        birth = date(2026 - age, rng.randint(1, 12), rng.randint(1, 28))
        if code in US_PROTOCOLS and (i // len(codes)) % 2 == 0:
            tz = "America/New_York"
        elif i % 7 == 3:
            tz = "Europe/Dublin"
        else:
            tz = "Europe/London"
        channel = rng.choice(["email", "email", "email", "sms", "sms", "none"])
        # Some New York patients read Spanish (the patients' other language): their reminders, portal and card.
        # Decided without the random draws, so every other patient of the demo is the same with or without it.
        language = "es" if tz == "America/New_York" and i // len(codes) == 2 and i % 2 == 0 else "en"
        slug = f"{given}.{family}".lower().replace("'", "")
        seeds.append(
            PatientSeed(
                index=i,
                clinic_slug=clinic.slug,
                mrn=f"{clinic.mrn_prefix}{100200 + i * 37:06d}",
                given_name=given,
                family_name=family,
                sex=sex,
                birth_date=birth,
                # Channel "sms" with no email, or "none" with both, are all real situations.
                email=f"{slug}{i}@example.org" if channel != "sms" or i % 4 else "",
                phone=f"+4477009{rng.randint(0, 99999):05d}",
                timezone=tz,
                cause=CAUSES[code][(i // len(codes)) % len(CAUSES[code])],
                neuro=code == "hydroxo-uk-neuro",
                channel=channel,
                protocol_code=code,
                language=language,
                story=story,
                walk_seed=rng.randint(0, 2**31),
            )
        )
    return seeds


def create_patient(*, seed: PatientSeed, clinic: Clinic, staff: dict[str, list[Any]]) -> Patient:
    """The patient, their regimen walked through to today, and their lab history, in one transaction."""
    rng = random.Random(seed.walk_seed)
    nurses = staff[Role.NURSE] or staff[Role.CLINICIAN]
    clinician = (staff[Role.CLINICIAN] or nurses)[0]
    protocol = Protocol.objects.get(code=seed.protocol_code)
    story = seed.story
    # One transaction per patient: a failure leaves no half-built patient behind, so a re-run
    # (which skips existing MRNs) can complete the demo. The monitoring rules run once, after it commits, not
    # once per dose and result recorded (events.coalesced).
    with transaction.atomic(), events.coalesced():
        patient = Patient.objects.create(
            clinic=clinic,
            mrn=seed.mrn,
            given_name=seed.given_name,
            family_name=seed.family_name,
            birth_date=seed.birth_date,
            sex=seed.sex,
            email=seed.email,
            phone=seed.phone,
            timezone=seed.timezone,
            deficiency_cause=seed.cause,
            neurological_involvement=seed.neuro,
            reminder_channel=seed.channel,
            language=seed.language,
        )
        today = patient_today(patient)
        options: dict[str, Any] = dict(story.options)
        if story.enrol_phase:
            options["enrol"] = {
                "phase": story.enrol_phase,
                "last_dose_date": (today - timedelta(days=story.enrol_last_ago)).isoformat(),
                "doses_given": 0,
            }
        regimen = services.regimen_start(
            patient=patient,
            protocol=protocol,
            start_date=today - timedelta(days=story.start_ago),
            options=options,
            user=clinician,
            today=today,
        )
        walker = DoseWalker(patient=patient, clinic=clinic, nurses=nurses, rng=rng, story=story, today=today)
        walker.walk(regimen, until=today - timedelta(days=story.stop_ago))
        if story.confirm_gate:
            regimen.refresh_from_db()
            last = walker.last_given or today
            services.regimen_confirm_gate(
                regimen=regimen,
                confirmed_on=min(today, last + timedelta(days=2)),
                note="Reticulocyte count up on day 6; clinical improvement.",
                user=clinician,
            )
            walker.walk(regimen, until=today - timedelta(days=story.stop_ago))
        if story.end_phase_ago is not None:
            ended_on = today - timedelta(days=story.end_phase_ago)
            # The end date cannot precede the last dose given in the phase.
            ended_on = max(ended_on, walker.last_given or ended_on)
            services.regimen_end_phase(
                regimen=regimen,
                ended_on=ended_on,
                note=story.end_note,
                acknowledge=["lifelong_therapy_stopped"],
                override_reason=story.end_note,
                user=clinician,
            )
            walker.walk(regimen, until=today)
        if story.shorten_to is not None:
            regimen.refresh_from_db()
            services.regimen_shorten_interval(
                regimen=regimen, spacing_value=story.shorten_to, by=clinician, reason=story.shorten_reason
            )
        if story.stop_reason:
            services.regimen_stop(
                regimen=regimen, reason=story.stop_reason, acknowledge=["lifelong_therapy_stopped"], user=clinician
            )
        if seed.neuro:
            PatientFact.objects.create(
                patient=patient,
                kind=FactKind.NEURO_SYMPTOMS,
                onset_date=today - timedelta(days=story.start_ago + 21),
                note="Paraesthesia in both feet, unsteady gait.",
                recorded_by=clinician,
            )
        # Results last: their evaluation (after this transaction commits) opens the story's alerts.
        labs.add_lab_history(patient=patient, index=seed.index, user=nurses[0], today=today)
    return patient


class DoseWalker:
    """Records what happened to each past planned dose, oldest first, through the services. Each
    record re-plans the regimen, so the next dose is always read back from the database."""

    def __init__(
        self,
        *,
        patient: Patient,
        clinic: Clinic,
        nurses: list[Any],
        rng: random.Random,
        story: Story,
        today: date,
    ) -> None:
        self.patient = patient
        self.zone = ZoneInfo(patient.timezone)
        self.open_weekdays = set(clinic.open_weekdays)
        self.closed = clinic.closed_date_set()
        self.nurses = nurses
        self.rng = rng
        self.story = story
        self.today = today
        self.last_given: date | None = None
        self.lots: dict[str, tuple[str, date]] = {}

    def pending(self, regimen: Regimen, until: date) -> Iterator[ScheduledDose]:
        # A bound on the loop: a 300-day daily history is the longest walk the demo needs.
        for _ in range(1000):
            dose = (
                ScheduledDose.objects.filter(regimen=regimen, status=DoseStatus.PLANNED, due_date__lt=until)
                .order_by("due_date", "phase_index", "sequence")
                .first()
            )
            if dose is None:
                return
            yield dose

    def walk(self, regimen: Regimen, until: date) -> None:
        regimen.refresh_from_db(fields=["status"])
        if regimen.status != RegimenStatus.ACTIVE:
            return
        for dose in self.pending(regimen, until):
            past_due = ScheduledDose.objects.filter(
                regimen=regimen, status=DoseStatus.PLANNED, due_date__lt=min(until, self.today)
            ).count()
            if past_due <= self.story.overdue:
                return
            if self.rng.random() < self.story.miss_rate:
                reasons = ORAL_REASONS if dose.self_administered else CLINIC_REASONS
                services.dose_record_not_given(
                    dose=dose, reason=self.rng.choice(reasons), on=dose.due_date, user=self.rng.choice(self.nurses)
                )
            else:
                self.give(dose, until)

    def give_on(self, dose: ScheduledDose, until: date) -> date:
        """The due date, or a day or two later (patients come late), still before `until`."""
        if self.rng.random() >= self.story.late_rate:
            return dose.due_date
        for delay in (1, 2):
            day = dose.due_date + timedelta(days=delay)
            if day >= until:
                break
            if dose.self_administered or (day.weekday() in self.open_weekdays and day not in self.closed):
                return day
        return dose.due_date

    def give(self, dose: ScheduledDose, until: date) -> None:
        on = self.give_on(dose, until)
        if dose.self_administered:
            # Patient-reported oral doses: no lot or site, taken with breakfast.
            at = datetime.combine(on, time(8, self.rng.randint(0, 59)), tzinfo=self.zone)
            services.dose_record_administration(dose=dose, administered_at=at, route=dose.route)
        else:
            at = datetime.combine(
                on, time(self.rng.randint(9, 16), self.rng.choice([0, 10, 20, 30, 40, 50])), tzinfo=self.zone
            )
            lot, expiry = self.lot_for(dose.drug, on)
            services.dose_record_administration(
                dose=dose,
                administered_at=at,
                lot_number=lot,
                expiry_date=expiry,
                site=self.rng.choice(IM_SITES),
                user=self.rng.choice(self.nurses),
            )
        self.last_given = on

    def lot_for(self, drug: str, on: date) -> tuple[str, date]:
        """A clinic uses one batch for a while; a new one once the old is near its expiry."""
        current = self.lots.get(drug)
        if current is None or current[1] <= on + timedelta(days=30):
            prefix = "HX" if drug == "hydroxocobalamin" else "CY"
            current = (
                f"{prefix}{self.rng.randint(10000, 99999)}{self.rng.choice('ABCDEFGH')}",
                on + timedelta(days=self.rng.randint(90, 540)),
            )
            self.lots[drug] = current
        return current
