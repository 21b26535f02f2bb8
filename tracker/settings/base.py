"""Settings for every environment, read from the environment (12-factor, django-environ).

Defaults are for local use: SQLite under var/ and a file-system Celery broker, so that
`make run` works on a fresh machine with nothing else installed. Production settings
(tracker.settings.production) refuse to start without a secret key and allowed hosts.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from kombu import Queue

from tracker.settings import cobalt_delivery, cobalt_monitoring, cobalt_rechecks, cobalt_reminders, cobalt_safety

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("COBALT_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "tracker.apps.CobaltAdminConfig",  # django.contrib.admin, its site for superusers only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens stored as digests (tracker/authentication.py)
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_htmx",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "tracker",
    "patients",
    "regimens",
    "notifications",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tracker.middleware.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tracker.middleware.NoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # An htmx request sent to sign in (again) loads the sign-in page whole, not inside a row (tracker/middleware.py).
    "tracker.middleware.HtmxSignInMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The TOTP second factor (tracker/two_factor.py): request.user.is_verified(), then the sign-in step.
    "django_otp.middleware.OTPMiddleware",
    "tracker.two_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tracker.middleware.ClinicTimezoneMiddleware",
    # Pages wait for the monitoring rules their writes trigger; the API queues them for a worker.
    "tracker.middleware.AtOnceMiddleware",
    # Last, as django-axes requires: answers a locked-out sign-in (the web pages' /login/ and /admin/login/).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tracker.urls"
WSGI_APPLICATION = "tracker.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tracker" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tracker.pages.navigation",
            ],
            # `|day` and `|moment` in every template without a {% load %} (tracker/templatetags/cobalt_dates.py).
            "builtins": ["tracker.templatetags.cobalt_dates"],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'cobalt.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a web or Celery process keeps its PostgreSQL connection for up to a minute instead of
# opening one per request (about a third of a small API request's time; bench/README.md, the load test), and
# checks it before reuse. `?conn_max_age=N` in DATABASE_URL overrides (0: a connection per request).
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat share one SQLite file without
    # "database is locked" errors on every concurrent write.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's full set: not like the username or email, at least 12 characters, not a common password
# ("password", "12345678"), not all digits (issue 12).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("COBALT_PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Sign-in protection (docs/security.md) -------------------------------------------------
# django-axes locks a username at one address out after AXES_FAILURE_LIMIT wrong passwords, for
# AXES_COOLOFF_TIME, on every sign-in that goes through Django's authenticate(): the web pages' /login/, the
# admin's /admin/login/ and the API's token endpoint. Username and address together, so that one member of
# staff's typos (or an attacker) cannot lock a whole clinic behind one NAT address out.
AUTHENTICATION_BACKENDS = [
    "tracker.authentication.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("COBALT_SIGN_IN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("COBALT_SIGN_IN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Sign-in events: axes' access log (every sign-in and sign-out, address and browser) and failure log, in the
# admin under "Axes" for superusers.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "tracker.lockout.locked_out"
# Behind a proxy that sets X-Forwarded-For, set COBALT_PROXY_COUNT to the number of proxies (1 for one).
AXES_IPWARE_PROXY_COUNT = env.int("COBALT_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
# The TOTP second factor: required of clinicians, clinic admins and superusers on the web pages and the admin.
OTP_TOTP_ISSUER = "Cobalt"
# API tokens expire this long after they were issued; a password change or deactivation revokes them.
TOKEN_TTL = timedelta(hours=env.int("COBALT_TOKEN_TTL_HOURS", default=24 * 7))
# django-rest-knox: only a digest of each token is stored; `Authorization: Token <key>`.
REST_KNOX = {"TOKEN_TTL": TOKEN_TTL, "AUTH_HEADER_PREFIX": "Token", "AUTO_REFRESH": False}
# POST /api/auth/token/ (tracker/auth.py) per client address; past it a 429 with Retry-After.
TOKEN_THROTTLE_RATE = env.str("COBALT_TOKEN_THROTTLE_RATE", default="10/minute")

# The throttles' counters: shared by every web worker when Redis is configured (else per process).
if env.str("REDIS_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("COBALT_CACHE_URL", default=env.str("REDIS_URL")),
        }
    }

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise warns on every request until collectstatic has made the folder.
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# The web pages' sign-in (tracker/pages.py); every staff role lands on the worklist.
LOGIN_URL = "/login/"
# A form posted with a stale token: reloaded in place for htmx, a page saying what to do otherwise (tracker/pages.py).
CSRF_FAILURE_VIEW = "tracker.pages.csrf_failure"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Forms of the web pages render with the NHS.UK design system's markup (tracker/forms.py).
FORM_RENDERER = "tracker.forms.NHSUKRenderer"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tracker.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tracker.permissions.IsClinicStaff"],
    # KnownQueryParameters first: an unknown parameter is refused before any filter runs (tracker/api.py).
    "DEFAULT_FILTER_BACKENDS": [
        "tracker.api.KnownQueryParameters",
        "tracker.api.ClinicScopedFilterBackend",
        "tracker.api.Ordering",
    ],
    # page_size up to tracker.api.MAX_PAGE_SIZE; the default page size is tracker.api.DEFAULT_PAGE_SIZE.
    "DEFAULT_PAGINATION_CLASS": "tracker.api.Pagination",
    # JSON bodies only: one request shape per operation for generated clients. The CSV import sets its
    # own multipart parsers; the admin and the web pages are Django views, not DRF, and are unaffected.
    "DEFAULT_PARSER_CLASSES": ["tracker.parsers.JSONObjectParser"],
    "DEFAULT_SCHEMA_CLASS": "tracker.schema.AutoSchema",
    "EXCEPTION_HANDLER": "tracker.api.exception_handler",
    "DATE_INPUT_FORMATS": ["iso-8601"],
    "DATETIME_INPUT_FORMATS": ["iso-8601"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cobalt API",
    "DESCRIPTION": "Schedules and monitors vitamin B12 deficiency treatment.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are for signed-in users (issue 12); `manage.py spectacular` writes it to a file.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from our own static files: clinic networks often block CDNs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        # The lab import job and the calendar re-plan job share their statuses (patients.models.JobStatus).
        "JobStatusEnum": "patients.models.JobStatus",
        # The evidence tag of each drug code (RULES §7.2, regimens/drug_codes.py): one choice set for four fields.
        "DrugCodeEvidenceEnum": "regimens.drug_codes.EVIDENCE_TAGS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.schema.make_nullable_refs_inline",
    ],
}

# --- Content Security Policy (django-csp) ---------------------------------------------------
# Pages load scripts, styles, fonts and images from this server only: no inline script or style="" (the
# pages are built that way), no framing, forms post here. The API docs page relaxes styles (tracker/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Celery -----------------------------------------------------------------------------
# With REDIS_URL, Redis is the broker. Without it, kombu's file-system transport: a broker
# that needs no server, so `make run` works on a bare machine (web, worker and beat share
# the folder var/broker/).
REDIS_URL = env.str("REDIS_URL", default="")
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        # Broadcast/control messages too, or kombu writes ./control/ wherever the process starts.
        "control_folder": str(BROKER_DIR / "control"),
        # How long a consumer waits before it looks in the folder again (kombu's default 1 s). A worker that takes one
        # message at a time (prefetch 1) waited that long between messages: the deliveries a fresh demo queues, then
        # the first evaluations of API writes, took minutes to drain. 0.1 s reads a folder ten times a second.
        "polling_interval": 0.1,
    }
# Two queues, so that bulk work cannot hold up what a patient or a member of staff waits for (docs/scaling.md
# "Workers and queues"). "celery", the default, takes the interactive tasks: a reminder's or alert's delivery
# (notifications.deliver) and the rules run after a result or a dose is recorded (monitoring.evaluate_patient).
# "bulk" takes the sweeps and their shards, calendar re-plans and lab imports. A worker started without -Q consumes
# both; `make run` (Procfile) runs one worker per queue. Each queue's routing key is its own name: left empty, Celery
# gives every queue the default key "celery", so a message sent to that key would land in both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery", routing_key="celery"), Queue("bulk", routing_key="bulk"))
CELERY_TASK_ROUTES = {
    name: {"queue": "bulk"}
    for name in (
        "tracker.run_sweep",
        "tracker.run_sweep_shard",
        "tracker.finish_sweep",
        "regimens.replan_clinic_job",
        "patients.import_lab_job",
    )
}
CELERY_TASK_IGNORE_RESULT = True
# A sweep fanned out over the workers is a chord (tracker/tasks.py): its shard tasks' results go to Redis, kept an
# hour. Without Redis there is no result backend and a sweep runs its shards in one task.
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's consumer, made to survive a broker restart that Celery 5.7.0's own can exit on (tracker/worker.py).
CELERY_WORKER_CONSUMER = "tracker.worker:Consumer"
# When the broker goes away, the tasks running then finish: a delivery's send completes and its row is marked sent, so
# the message redelivered afterwards finds it sent and does nothing. Celery 6 will cancel them by default instead; a
# delivery cancelled after the provider accepted it would be sent again once its lease ran out (docs/delivery.md).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Every periodic sweep (tracker/sweeps.py) on its beat; `manage.py run_sweeps` runs the same code.
# Sweeps are idempotent, so the period only sets how soon a change is noticed.
CELERY_BEAT_SCHEDULE = {
    "horizons": {
        "task": "tracker.run_sweep",
        "schedule": env.float("COBALT_SWEEP_HORIZONS_SECONDS", default=3600.0),
        "args": ("horizons",),
    },
    # time-based monitoring rules (overdue doses and rechecks, neuro review, windows).
    "monitoring": {
        "task": "tracker.run_sweep",
        "schedule": env.float("COBALT_SWEEP_MONITORING_SECONDS", default=900.0),
        "args": ("monitoring",),
    },
    # plan patient reminders (due times live in rows; no far-future ETA tasks).
    "reminders": {
        "task": "tracker.run_sweep",
        "schedule": env.float("COBALT_SWEEP_REMINDERS_SECONDS", default=300.0),
        "args": ("reminders",),
    },
    # staff digests and escalation of unacknowledged high and critical alerts.
    "staff": {
        "task": "tracker.run_sweep",
        "schedule": env.float("COBALT_SWEEP_STAFF_SECONDS", default=300.0),
        "args": ("staff",),
    },
    # the safety net of the monitoring rules queued for a worker (monitoring/queue.py): markers whose task was lost.
    "evaluations": {
        "task": "tracker.run_sweep",
        "schedule": env.float("COBALT_SWEEP_EVALUATIONS_SECONDS", default=60.0),
        "args": ("evaluations",),
    },
    # the safety net: re-queue due deliveries left pending, reclaim expired leases. It is also what hands a reminder
    # planned ahead (next week's) to a worker once it falls due, so it runs on the interactive queue, not behind
    # the other sweeps' shards in "bulk": one UPDATE and one SELECT, then a message per due row.
    "outbox": {
        "task": "tracker.run_sweep",
        "schedule": env.float("COBALT_SWEEP_OUTBOX_SECONDS", default=60.0),
        "args": ("outbox",),
        "options": {"queue": "celery"},
    },
}

# --- Email and SMS ----------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Cobalt <no-reply@cobalt.localhost>")

# --- Clinical settings for RULES proposals ([P]) -------------------------------------
# Every [P] number in RULES is a setting with the proposed default. A clinician must
# sign them off before go-live (RULES §9).
COBALT = {
    # Scheduling semantics: lifelong phases planned 12 months ahead, clinician-ended 14 days.
    "HORIZON_LIFELONG_MONTHS": env.int("COBALT_HORIZON_LIFELONG_MONTHS", default=12),
    "HORIZON_CLINICIAN_ENDED_DAYS": env.int("COBALT_HORIZON_CLINICIAN_ENDED_DAYS", default=14),
    # a start date more than this many days ahead is refused as implausible.
    "MAX_START_DAYS_AHEAD": env.int("COBALT_MAX_START_DAYS_AHEAD", default=365),
    # Issue 12, NOT from RULES (RULES §1.1 lets a clinician override any number with a reason, and gives no
    # bound): even with override_reason, a per-patient dose, spacing or count stays within the protocol's
    # range widened by this factor (a tenth of the minimum to ten times the maximum): wide enough for what the
    # rules themselves ask (R-ORAL-1's 1000 mcg a day on a 50-150 mcg oral protocol), narrow enough to refuse
    # 5,000,000 mcg or 20,000 doses. Needs clinical sign-off (docs/clinical-reference.md, decision D-S1).
    "OVERRIDE_MAX_FACTOR": env.int("COBALT_OVERRIDE_MAX_FACTOR", default=10),
    # Issue 12: clinicians, clinic admins and superusers confirm each web sign-in with a TOTP code
    # (tracker/two_factor.py). On by default in production settings; off here so that `make run`'s demo
    # logins work with a password alone.
    "REQUIRE_SECOND_FACTOR": env.bool("COBALT_REQUIRE_SECOND_FACTOR", default=False),
    # Issue 12: an override reason (options.override_reason, and the reason for overriding a hard stop such
    # as S-1) has at least this many characters: "x" documents nothing. Not a clinical number.
    "OVERRIDE_REASON_MIN_LENGTH": env.int("COBALT_OVERRIDE_REASON_MIN_LENGTH", default=10),
    # §5.1: the B12 cut-off set (NG239, BSH-2014 or AFP-2017; §8 Q5, Q7) and per-lab sets,
    # e.g. COBALT_B12_LAB_CUTOFFS="St Mary's Pathology=BSH-2014;Other lab=AFP-2017".
    "B12_CUTOFFS": env.str("COBALT_B12_CUTOFFS", default="NG239"),
    "B12_LAB_CUTOFFS": dict(
        item.split("=", 1) for item in env.str("COBALT_B12_LAB_CUTOFFS", default="").split(";") if "=" in item
    ),
    # The upper limits used for a result whose lab sent no range (§3.2; patients/labs/reference_ranges.py, checked
    # by monitoring/checks.py cobalt.E004). RULES §3.3 A-H6 [P] threshold: MCV > ULN, "default 100 fL".
    "MCV_FALLBACK_ULN": env.int("COBALT_MCV_FALLBACK_ULN", default=100),
    # RULES §8 Q4: use the reporting lab's MMA ULN, "fall back to 400 nmol/L [P]".
    "MMA_FALLBACK_ULN": env.int("COBALT_MMA_FALLBACK_ULN", default=400),
    # Bulk re-plans (a clinic calendar change, the horizons sweep): regimens re-planned per transaction.
    "REPLAN_BATCH_SIZE": env.int("COBALT_REPLAN_BATCH_SIZE", default=200),
    # Issue 16, not clinical: a calendar change at a clinic with more active regimens than this is re-planned by
    # a Celery job in batches (regimens/jobs.py; the API answers 202 with the job's URL); smaller ones at once.
    "CALENDAR_SYNC_MAX_REGIMENS": env.int("COBALT_CALENDAR_SYNC_MAX_REGIMENS", default=200),
    # A re-plan job with no sign of its worker for this long is queued again by the horizons sweep.
    "REPLAN_JOB_STALE_SECONDS": env.int("COBALT_REPLAN_JOB_STALE_SECONDS", default=600),
    # A sweep never overlaps itself (tracker/sweeps.py sweep_lock): a Redis lock per sweep name, renewed while
    # the sweep runs and expiring this many seconds after its worker died. Empty URL (make run without Redis,
    # one beat): no lock.
    "SWEEP_LOCK_URL": env.str("COBALT_SWEEP_LOCK_URL", default=REDIS_URL),
    "SWEEP_LOCK_SECONDS": env.int("COBALT_SWEEP_LOCK_SECONDS", default=60),
    # A sweep's per-patient work is cut into shards of this many patient ids, one Celery task each, shared by the
    # workers (tracker/sweeps.py shards); it bounds a worker's memory. One shard: the sweep runs in one task.
    "SWEEP_SHARD_SIZE": env.int("COBALT_SWEEP_SHARD_SIZE", default=5000),
    # Issue 12, not clinical: a CSV import of more rows than this runs as a Celery job (patients/labs/jobs.py)
    # and the API answers 202 with the job's URL; smaller files are imported within the request.
    "IMPORT_SYNC_MAX_ROWS": env.int("COBALT_IMPORT_SYNC_MAX_ROWS", default=2000),
    # A lab import job queued or running with no sign of its worker (progress) for this long is shown as failed
    # (its worker died; nothing was stored) and the file can be uploaded again (patients/labs/jobs.py). Not
    # clinical; must exceed the longest write of a job's results (seconds for 100,000 rows).
    "IMPORT_STALE_SECONDS": env.int("COBALT_IMPORT_STALE_SECONDS", default=600),
}
# The monitoring, safety, delivery, reminder and lab-recheck settings live beside this file, one module each.
COBALT.update(cobalt_monitoring.SETTINGS)
COBALT.update(cobalt_safety.SETTINGS)
COBALT.update(cobalt_delivery.SETTINGS)
COBALT.update(cobalt_reminders.SETTINGS)
COBALT.update(cobalt_rechecks.SETTINGS)
