"""Django settings for a Letsema district node.

Everything district-specific comes from ``district_configs/<LETSEMA_DISTRICT>.toml`` (validated) and
secrets from the environment or ``var/secrets/<district>/`` (config.secrets). A bad configuration
stops the process with one line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab

from config.district import REPO_ROOT, DistrictConfigError, load
from config.secrets import SecretMissing, parse_peppers, read_secret
from federation.conf import parse_peer_timeouts

try:
    DISTRICT = load()
    _SECRET_KEY = read_secret("django_secret_key", DISTRICT.code)
    _JWT_KEY = read_secret("jwt_signing_key", DISTRICT.code)
    _DB_PASSWORD = read_secret("db_password", DISTRICT.code)
    NETWORK_PEPPERS = parse_peppers(read_secret("network_pepper", DISTRICT.code))
except (DistrictConfigError, SecretMissing, ValueError) as exc:
    sys.stderr.write(f"letsema: configuration error: {exc}\n")
    sys.stderr.flush()
    raise SystemExit(2) from None

BASE_DIR = REPO_ROOT
VAR_DIR = Path(os.environ.get("LETSEMA_VAR_DIR") or REPO_ROOT / "var")
SECRET_KEY = _SECRET_KEY
DEBUG = os.environ.get("LETSEMA_DEBUG") == "1"
ALLOWED_HOSTS = ["*"] if DEBUG else ["127.0.0.1", "localhost", "testserver", *os.environ.get("LETSEMA_ALLOWED_HOSTS", "").split(",")]
ALLOWED_HOSTS = [h for h in ALLOWED_HOSTS if h]

# TLS. A node in production sits behind a TLS-terminating proxy (which sets X-Forwarded-Proto) and runs with
# LETSEMA_HTTPS=1: plain HTTP is redirected (but /healthz, for the load balancer), cookies are secure-only and
# browsers are told HSTS. Off by default: the local cluster and the tests talk plain HTTP on loopback.
# `manage.py check --deploy --fail-level WARNING` with LETSEMA_HTTPS=1 reports no issue (tests/test_config.py).
HTTPS = os.environ.get("LETSEMA_HTTPS") == "1"
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("LETSEMA_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("LETSEMA_HSTS_INCLUDE_SUBDOMAINS", "1") == "1"
    SECURE_HSTS_PRELOAD = os.environ.get("LETSEMA_HSTS_PRELOAD", "1") == "1"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "node.core.apps.CoreConfig",
    "node.users",
    "node.mfis",
    "node.audit",
    "node.borrowers",
    "node.ledger",
    "node.health",
    "node.loans",
    "node.credit.apps.CreditConfig",
    "node.cob.apps.CobConfig",
    "node.repayments.apps.RepaymentsConfig",
    "node.notifications.apps.NotificationsConfig",
    "node.payroll.apps.PayrollConfig",
    "node.peers.apps.PeersConfig",
    "node.reports.apps.ReportsConfig",
    "replication",
    "node.web.apps.WebConfig",
]

MIDDLEWARE = [
    "node.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the web interface: English / Sesotho
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "node.web.middleware.WebSecurityHeadersMiddleware",  # CSP etc. on web pages only
    "node.core.openapi.QueryParameterCheckMiddleware",  # API: only the query parameters the document lists
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "users.User"
# passwords go through the throttled, audited check (node/users/tokens.py), for the web log-in and the admin too
AUTHENTICATION_BACKENDS = ["node.users.authentication.ThrottledModelBackend"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": DISTRICT.pg_host,
        "PORT": DISTRICT.pg_port,
        "NAME": DISTRICT.pg_name,
        "USER": DISTRICT.pg_user,
        "PASSWORD": _DB_PASSWORD,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 3},
    }
}
if DISTRICT.pg_standby_port is not None:
    # primary + streaming standby (docs/runbooks/pg-failover.md): libpq tries every host and keeps the one that
    # accepts writes, so after a promotion the node reconnects to the new primary without a config edit; the
    # health check above drops connections to a dead server before a request uses them
    DATABASES["default"]["HOST"] = ",".join(h for h, _ in DISTRICT.pg_hosts)
    DATABASES["default"]["PORT"] = ",".join(str(p) for _, p in DISTRICT.pg_hosts)
    DATABASES["default"]["OPTIONS"]["target_session_attrs"] = "read-write"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
# Sesotho is registered in node.web.apps (not a Django built-in); its catalogue is node/web/locale/st.
LANGUAGES = [("en", "English"), ("st", "Sesotho")]
LOGIN_URL = "web:login"
TIME_ZONE = DISTRICT.timezone
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("LETSEMA_STATIC_ROOT") or str(REPO_ROOT / "var" / "static")
# collectstatic (the container's start; `up` runs it when a static source changed: collectstatic_changed) writes
# each file under a name carrying a hash of its content (web/app.3c9e1f0a2b7d.css) plus .gz copies; pages link the hashed names, so WhiteNoise serves them as
# immutable for a year (a phone on 3G never re-asks for them; bench/page_load_3g.py) and gzip to browsers that
# accept it (htmx: 51 KB -> 17 KB). Files served through the finders have no compressed copies: only DEBUG uses them.
STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["node.users.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "node.core.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "node.core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# password guessing (docs/auth.md): failures per account within the window before its password is not checked
LETSEMA_LOGIN_FAILURE_LIMIT = int(os.environ.get("LETSEMA_LOGIN_FAILURE_LIMIT", "10"))
LETSEMA_LOGIN_FAILURE_WINDOW_MINUTES = int(os.environ.get("LETSEMA_LOGIN_FAILURE_WINDOW_MINUTES", "15"))

# days a dead token session (revoked, or its refresh token expired) is kept before the daily prune deletes it
LETSEMA_TOKEN_SESSION_RETENTION_DAYS = int(os.environ.get("LETSEMA_TOKEN_SESSION_RETENTION_DAYS", "30"))

# credit look-ups per staff member in any hour before 429 enquiry_limit_reached and an alert (0: no limit)
LETSEMA_CREDIT_REPORTS_PER_HOUR = int(os.environ.get("LETSEMA_CREDIT_REPORTS_PER_HOUR", "60"))
# days a lender has to answer a borrower's dispute of a credit record (docs/credit-disputes.md)
LETSEMA_DISPUTE_RESPONSE_DAYS = int(os.environ.get("LETSEMA_DISPUTE_RESPONSE_DAYS", "21"))

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": _JWT_KEY,
    "ISSUER": f"letsema:{DISTRICT.code}",
    "AUDIENCE": f"letsema:{DISTRICT.code}:api",  # a token without it, or for another audience, is refused
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": f"Letsema district node API — {DISTRICT.name}",
    "DESCRIPTION": "Credit network for microfinance institutions. Errors are always {code, message, details}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ReceivedChannelEnum": ["cash", "bank", "mobile_money", "payroll"],
                            "RepaymentChannelEnum": ["cash", "bank", "mobile_money", "payroll", "transfer"],
                            "RefundChannelEnum": ["cash", "bank", "mobile_money"],
                            "AllocationStrategyEnum": ["penalties_fees_interest_principal",
                                                       "principal_interest_penalties_fees"],
                            "NotifyChannelEnum": ["sms", "email", "both", "none"],
                            "DisputeStatusEnum": ["open", "corrected", "rejected"]},
}

# Celery: one Redis database per district on the shared broker.
CELERY_BROKER_URL = DISTRICT.redis_url
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connections around every task unless told to reuse them; a task
# instead treats its connection like a request does (config/celery.py): this only bounds how long one lives.
CELERY_DB_REUSE_MAX = 10_000
# Periodic jobs (run by the worker's embedded beat in the local cluster). The outbox shipper is idempotent and
# safe to overlap (SKIP LOCKED), so a short interval only costs an empty query when nothing is pending.
_COB_AT = os.environ.get("LETSEMA_COB_AT", "00:15")  # local time the previous business day is closed
_REMINDERS_AT = os.environ.get("LETSEMA_REMINDERS_AT", "07:00")  # local time installment reminders are made
# The shipper writes this many borrower partitions to the ring side by side (each partition's events in order), and
# keeps shipping full batches for up to this many seconds per run (a backlog after a ring outage drains at once).
LETSEMA_SHIP_CONCURRENCY = int(os.environ.get("LETSEMA_SHIP_CONCURRENCY", "16"))
LETSEMA_SHIP_BUDGET_S = float(os.environ.get("LETSEMA_SHIP_BUDGET_S", "20"))
# A transaction that wrote outbox events asks for a shipping run this many ms after its commit (coalesced across the
# node's processes; 0: only the beat ships). replication/outbox.py; docs/credit-network.md (lag).
LETSEMA_SHIP_WAKE_MS = int(os.environ.get("LETSEMA_SHIP_WAKE_MS", "200"))
# The same for notifications: a commit that recorded some asks for a delivery run this many ms later (coalesced;
# 0: one run queued per commit). node/notifications/services.py
LETSEMA_NOTIFY_WAKE_MS = int(os.environ.get("LETSEMA_NOTIFY_WAKE_MS", "200"))
# Payroll uploads over HTTP: at most this many rows to post are posted inside the request; a larger file is posted
# by a Celery task (answer 202), LETSEMA_PAYROLL_TASK_S seconds of batches per run (docs/payroll.md)
LETSEMA_PAYROLL_SYNC_ROWS = int(os.environ.get("LETSEMA_PAYROLL_SYNC_ROWS", "500"))
LETSEMA_PAYROLL_TASK_S = float(os.environ.get("LETSEMA_PAYROLL_TASK_S", "10"))
# batches of one payroll import posted side by side (forked processes, each with its own connection; their loans differ)
LETSEMA_PAYROLL_POST_WORKERS = int(os.environ.get("LETSEMA_PAYROLL_POST_WORKERS", "2"))
# seconds between the notification sweeps (retries, lost broker messages); the commit itself wakes a delivery run
_NOTIFY_SWEEP_S = float(os.environ.get("LETSEMA_NOTIFY_SWEEP_EVERY", "60"))
CELERY_BEAT_SCHEDULE = {
    "ship-outbox": {"task": "replication.tasks.ship_outbox", "schedule": float(os.environ.get("LETSEMA_SHIP_EVERY", "5"))},
    "close-of-business": {"task": "node.cob.tasks.close_business_day",
                          "schedule": crontab(hour=int(_COB_AT.split(":")[0]), minute=int(_COB_AT.split(":")[1]))},
    # borrower notifications (docs/notifications.md): the sweep sends what is due (retries, lost broker messages);
    # the reminders run after close of business, at a decent hour for an SMS
    "deliver-notifications": {"task": "node.notifications.tasks.deliver_pending", "schedule": _NOTIFY_SWEEP_S,
                              "options": {"expires": max(1.0, _NOTIFY_SWEEP_S - 5)}},
    "notification-reminders": {"task": "node.notifications.tasks.send_reminders",
                               "schedule": crontab(hour=int(_REMINDERS_AT.split(":")[0]),
                                                   minute=int(_REMINDERS_AT.split(":")[1]))},
    # API sign-ins no token can use any more (docs/auth.md)
    "prune-token-sessions": {"task": "node.users.tasks.prune_token_sessions", "schedule": crontab(hour=3, minute=40)},
}
# Delinquency buckets: (lowest days past due, name). Close of business moves loans between them.
LETSEMA_DELINQUENCY_BUCKETS = [(0, "current"), (1, "1-30"), (31, "31-60"), (61, "61-90"), (91, "90+")]
# The monthly regulatory return's loan classification, per country: (lowest days past due, class, provision rate).
# Close of business classifies the portfolio with it at each month end (node.cob.MonthEndPortfolio).
LETSEMA_REGULATORY_CLASSES_BY_COUNTRY = {
    "LS": [(0, "current", "0.01"), (1, "special_mention", "0.05"), (31, "substandard", "0.25"),
           (91, "doubtful", "0.50"), (181, "loss", "1.00")],
}
LETSEMA_REGULATORY_CLASSES = LETSEMA_REGULATORY_CLASSES_BY_COUNTRY.get(
    DISTRICT.country, LETSEMA_REGULATORY_CLASSES_BY_COUNTRY["LS"])
# At each month end close of business books each MFI's loan loss provision to what those rates require (Dr 5100 /
# Cr 1190, or the release back): docs/close-of-business.md. Off for MFIs that provision outside Letsema's ledger.
LETSEMA_POST_PROVISIONS = os.environ.get("LETSEMA_POST_PROVISIONS", "1") == "1"

# The shared credit-history ring.
LETSEMA_RING = {
    "contact_points": list(DISTRICT.cassandra_contact_points),
    "port": DISTRICT.cassandra_port,
    "keyspace": DISTRICT.cassandra_keyspace,
    "replication_factor": DISTRICT.cassandra_replication_factor,
    "local_dc": DISTRICT.cassandra_local_dc,
}
# The stacking guard's policy until a Letsema admin sets the network policy in the ring (manage.py network_policy).
LETSEMA_STACKING_POLICY = {"max_active_loans": 3, "max_dti": "0.70", "reservation_days": 30}
HEALTH_CHECK_TIMEOUT_SECONDS = float(os.environ.get("LETSEMA_HEALTH_TIMEOUT", "2.5"))
# GET /metrics (Prometheus text): scrapers from these networks, or with this bearer token (node/health/metrics.py)
LETSEMA_METRICS_ALLOW = [n.strip() for n in os.environ.get("LETSEMA_METRICS_ALLOW", "127.0.0.0/8,::1/128").split(",")
                         if n.strip()]
LETSEMA_METRICS_TOKEN = os.environ.get("LETSEMA_METRICS_TOKEN", "")
# Federation between nodes (docs/federation.md): signature window, clock skew, per-peer timeout; the rest defaults
# in federation/conf.py (backoff, directory cache, Redis, key file).
LETSEMA_FEDERATION = {"max_age_seconds": int(os.environ.get("LETSEMA_FEDERATION_MAX_AGE", "300")), "clock_skew_seconds": int(os.environ.get("LETSEMA_FEDERATION_CLOCK_SKEW", "30")), "peer_timeout_seconds": float(os.environ.get("LETSEMA_FEDERATION_PEER_TIMEOUT", "0.3")), "peer_timeouts": parse_peer_timeouts(os.environ.get("LETSEMA_FEDERATION_PEER_TIMEOUTS", "")), "directory_ttl_seconds": float(os.environ.get("LETSEMA_FEDERATION_DIRECTORY_TTL", "30")), "ca_bundle": os.environ.get("LETSEMA_FEDERATION_CA_BUNDLE") or None}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "node.core.logging.ContextFilter"}},
    "formatters": {"json": {"()": "node.core.logging.JsonFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["stderr"], "level": os.environ.get("LETSEMA_LOG_LEVEL", "INFO")},
    "loggers": {
        "cassandra": {"level": "ERROR"},
        "django.db.backends": {"level": "WARNING"},
    },
}

# Borrower identity and KYC (see docs/borrower-identity.md).
# Mobile-money collections (docs/mobile-money.md): the provider's payment prompt (file | console | http) and the
# shared secret its signed confirmations are checked with (none: confirmations are refused, 503).
MOBILE_MONEY_BACKEND = os.environ.get("LETSEMA_MOBILE_MONEY_BACKEND", "file")
MOBILE_MONEY_FILE_PATH = Path(os.environ.get("LETSEMA_MOBILE_MONEY_FILE")
                              or VAR_DIR / "mobile_money" / f"{DISTRICT.code}.jsonl")
MOBILE_MONEY_URL = os.environ.get("LETSEMA_MOBILE_MONEY_URL", "")
MOBILE_MONEY_TIMEOUT = 5.0
try:
    MOBILE_MONEY_SECRET = read_secret("mobile_money_secret", DISTRICT.code)
except SecretMissing:
    MOBILE_MONEY_SECRET = ""
MOBILE_MONEY_SIGNATURE_WINDOW_SECONDS = 300  # a confirmation's timestamp must be this close to the node's clock
MOBILE_MONEY_PROMPT_SECONDS = 300  # a loan's earlier prompt must be this old (or answered) before another is sent

SMS_BACKEND = os.environ.get("LETSEMA_SMS_BACKEND", "file")  # file | console | http
SMS_FILE_PATH = Path(os.environ.get("LETSEMA_SMS_FILE") or VAR_DIR / "sms" / f"{DISTRICT.code}.jsonl")
SMS_HTTP_URL = os.environ.get("LETSEMA_SMS_URL", "")
SMS_HTTP_TIMEOUT = 5.0

# Borrower notifications (docs/notifications.md): SMS through the gateway above, e-mail through Django's backends —
# file-based under var/ unless LETSEMA_EMAIL_BACKEND=smtp (production: host, port, user and TLS from the
# environment, the password from $LETSEMA_EMAIL_PASSWORD or the secrets directory's email_password file).
NOTIFY_DAYS_BEFORE_DUE = int(os.environ.get("LETSEMA_NOTIFY_DAYS_BEFORE", "3"))  # the due-soon reminder, N days ahead
NOTIFY_MAX_ATTEMPTS = 8  # then the notification is "failed"
NOTIFY_RETRY_BASE_SECONDS = 60  # waits 1, 2, 4 ... minutes between attempts
NOTIFY_RETRY_MAX_SECONDS = 3600  # ... never more than an hour
NOTIFY_REMINDER_CATCHUP_DAYS = 7  # business dates the daily job catches up after an outage
_EMAIL_BACKENDS = {"file": "django.core.mail.backends.filebased.EmailBackend",
                   "smtp": "django.core.mail.backends.smtp.EmailBackend",
                   "console": "django.core.mail.backends.console.EmailBackend"}
if os.environ.get("LETSEMA_EMAIL_BACKEND", "file") not in _EMAIL_BACKENDS:
    sys.stderr.write(f"letsema: configuration error: LETSEMA_EMAIL_BACKEND must be one of {', '.join(_EMAIL_BACKENDS)}\n")
    raise SystemExit(2)
EMAIL_BACKEND = _EMAIL_BACKENDS[os.environ.get("LETSEMA_EMAIL_BACKEND", "file")]
EMAIL_FILE_PATH = os.environ.get("LETSEMA_EMAIL_DIR") or str(VAR_DIR / "mail" / DISTRICT.code)
EMAIL_HOST = os.environ.get("LETSEMA_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("LETSEMA_EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("LETSEMA_EMAIL_USER", "")
try:
    EMAIL_HOST_PASSWORD = read_secret("email_password", DISTRICT.code) if EMAIL_HOST_USER else ""
except SecretMissing:
    EMAIL_HOST_PASSWORD = ""
EMAIL_USE_TLS = os.environ.get("LETSEMA_EMAIL_TLS", "1") == "1"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("LETSEMA_EMAIL_FROM") or f"Letsema {DISTRICT.name} <no-reply@{DISTRICT.code}.letsema.ls>"
OTP_TTL_SECONDS = 300
OTP_MAX_ATTEMPTS = 5
OTP_RESEND_INTERVAL_SECONDS = 60
OTP_MAX_SENDS_PER_DAY = 5
KYC_STORAGE_DIR = Path(os.environ.get("LETSEMA_KYC_DIR") or VAR_DIR / "kyc" / DISTRICT.code)
KYC_MAX_BYTES = 5 * 1024 * 1024
KYC_RETENTION_DAYS = 7 * 365
DATA_UPLOAD_MAX_MEMORY_SIZE = KYC_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
