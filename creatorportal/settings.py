"""Settings for the Creator Consent Portal.

One module, configured by environment variables. A bad value stops start-up with
a message naming the variable: a portal that silently runs on the wrong
database or mail server would break the promises it makes to artists.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from creatorportal.mailers import mailer_from_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: set[str]) -> str:
    raw = os.environ.get(name) or default
    if not raw:
        return raw
    scheme = urlsplit(raw).scheme
    if scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name}={raw!r} has scheme {scheme!r}; expected one of: {allowed}.")
    return raw


DEBUG = env_bool("DJANGO_DEBUG", True)

_DEV_SECRET = "dev-insecure-secret-key-change-me-for-anything-but-a-laptop"  # noqa: S105 -- refused below when DEBUG is off
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is the development key; set a real secret in production.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if urlsplit(_origin).scheme not in {"http", "https"}:
        raise ImproperlyConfigured(
            f"DJANGO_CSRF_TRUSTED_ORIGINS entry {_origin!r} must start with http:// or https://."
        )

SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes={"http", "https"}).rstrip("/")
# How the portal names itself to people: in emails (ours and allauth's), in
# subjects, as the TOTP issuer. Never the Host header of some request.
SITE_NAME = "Creator Consent Portal"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "tracks",
    "consent",
    "notifications",
    "labels",
    "public",
    "ninja",
    "downstream",
    "creatorportal.health",
]

# The SiteOnly classes are Django's own middleware, passed by under /api/v1/ (bearer tokens and JSON: no
# session, user, messages or interface language there); see creatorportal/site_middleware.py.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "creatorportal.site_middleware.SiteOnlySessionMiddleware",
    "creatorportal.site_middleware.SiteOnlyLocaleMiddleware",
    "creatorportal.site_middleware.SiteOnlyCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "creatorportal.site_middleware.SiteOnlyAuthenticationMiddleware",
    "accounts.middleware.UserLocaleMiddleware",
    "creatorportal.site_middleware.SiteOnlyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "platformkit.middleware.RequestIdMiddleware",
    "downstream.middleware.ApiProblemMiddleware",
]

ROOT_URLCONF = "creatorportal.urls"
WSGI_APPLICATION = "creatorportal.wsgi.application"
ASGI_APPLICATION = "creatorportal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "creatorportal.context_processors.site",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# SQLite under var/ is the embedded default so that a bare machine can run the
# portal; production and CI use PostgreSQL through DATABASE_URL.
_default_db_url = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
_db_url = env_url("DATABASE_URL", _default_db_url, schemes={"sqlite", "postgres", "postgresql", "pgsql"})
DATABASES = {"default": dj_database_url.parse(_db_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not ":memory:", so that a real worker process in the tests sees
    # the same test database as the test itself; one per test run, so that two
    # runs at once do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000;"}
    )
    # The catalogue summary's covering index (PostgreSQL's INCLUDE) is a plain index on SQLite, which is
    # all the quick start needs; said once here rather than on every command.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions live in the database, never in the cache: a Redis outage must not
# sign anyone out or lose what a session holds (DESIGN.md rule 9).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# --- Redis: cache and Celery broker --------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes={"redis", "rediss", "unix"})

if REDIS_URL:
    # Fails open (creatorportal/cache.py): a page never waits on, or fails
    # with, a Redis that is down or hung; the timeouts bound the first call
    # that finds it so.
    CACHES = {
        "default": {
            "BACKEND": "platformkit.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    # allauth's rate limits need a real cache: a local-memory cache is real
    # within one process, which is what the quick start runs for the web.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "portal"}}

CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if not REDIS_URL:
    _queue_dir = VAR_DIR / "celery-queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
else:
    # Every retry countdown in the project stays below this, so that Redis
    # never redelivers a task that is merely waiting for its retry time.
    # socket_timeout: a hung Redis (the TCP connection open, nothing answering)
    # must fail a publish within seconds instead of holding the request forever.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 2}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
# Late acknowledgement: a task is acknowledged after it finishes, so a worker
# killed mid-task (deploy, OOM, SIGKILL) leaves it to be redelivered. Every task
# in this project is idempotent (it takes an id and claims its row with a
# conditional update), which is what makes redelivery safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {
    "worker-heartbeat": {"task": "creatorportal.tasks.worker_heartbeat", "schedule": 60.0},
}
# /healthz calls the workers stale when the freshest heartbeat (beat sends one a
# minute, to whichever worker takes it) is older than this.
HEALTHZ_WORKER_MAX_AGE_SECONDS = env_int("HEALTHZ_WORKER_MAX_AGE_SECONDS", 180, minimum=60)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The queue tasks go to and workers read by default; separate deployments (or
# test runs) sharing one Redis keep to their own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")

# --- Email ----------------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL", "")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_SEND_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
if not EMAIL_URL:
    if not DEBUG:
        # Email is how artists learn of every change; production must not
        # quietly write it to files.
        raise ImproperlyConfigured("EMAIL_URL must be set (smtp://host:port) when DJANGO_DEBUG is off.")
    EMAIL_URL = f"file://{VAR_DIR / 'mail'}"
MAILERS = {"default": mailer_from_url(EMAIL_URL, timeout=EMAIL_SEND_TIMEOUT, default_file_path=str(VAR_DIR / "mail"))}

# --- Static and media -------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Media is never served from a public URL: audio and artwork go through views
# that check who is asking. MEDIA_URL exists only because Django wants one.
MEDIA_URL = "/media-not-public/"


def s3_media_storage(
    *,
    bucket: str,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key: str | None,
    url_expire_seconds: int,
    addressing_style: str,
) -> dict:
    """The STORAGES entry for media on an S3-compatible store (also used by the tests' SeaweedFS fixture)."""
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    if not bucket:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs STORAGE_S3_BUCKET.")
    if addressing_style not in {"auto", "path", "virtual"}:
        raise ImproperlyConfigured(
            f"STORAGE_S3_ADDRESSING_STYLE={addressing_style!r} is not one of: auto, path, virtual."
        )
    # Uploads go up in 8 MB parts, two at a time and never more than two parts
    # in memory (the library's default keeps up to ten): whatever the file's
    # size, a web process holds about two parts of it, not the whole file.
    transfer = TransferConfig(
        multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=2
    )
    transfer.max_in_memory_upload_chunks = 2
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "default_acl": "private",
            "querystring_auth": True,
            # A signed URL is a bearer token: it lives minutes, not the library's default hour.
            "querystring_expire": url_expire_seconds,
            "file_overwrite": False,
            "transfer_config": transfer,
            "client_config": Config(
                signature_version="s3v4",
                s3={"addressing_style": addressing_style},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
            # A file opened for reading is spooled to disk past this size, never
            # held whole in memory (the library's default, 0, means no limit).
            "max_memory_size": 2 * 1024 * 1024,
        },
    }


_media_backend = env_str("STORAGE_BACKEND", "local")
if _media_backend == "local":
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
elif _media_backend == "s3":
    _media_storage = s3_media_storage(
        bucket=env_str("STORAGE_S3_BUCKET", ""),
        endpoint_url=env_str("STORAGE_S3_ENDPOINT_URL", ""),
        region=env_str("STORAGE_S3_REGION", ""),
        access_key=env_str("STORAGE_S3_ACCESS_KEY_ID", ""),
        secret_key=env_str("STORAGE_S3_SECRET_ACCESS_KEY", ""),
        url_expire_seconds=env_int("STORAGE_S3_URL_EXPIRE_SECONDS", 300, minimum=1),
        addressing_style=env_str("STORAGE_S3_ADDRESSING_STYLE", "auto"),
    )
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND={_media_backend!r} is not one of: local, s3.")

STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Accounts (django-allauth) ----------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = False
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupExtraForm"
ACCOUNT_ADAPTER = "notifications.account_adapter.AccountAdapter"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = urlsplit(SITE_URL).scheme
# No prefix: allauth's subjects read like the portal's own (the sender already
# names the portal).
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    # allauth's own defaults, written out so that they are visible and tunable.
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "change_password": "5/m/user",
}
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = SITE_NAME

# --- Security ------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Django's built-in CSP. No inline scripts or styles anywhere; the nonce exists
# for the rare script that must be inline.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "media-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Internationalisation -------------------------------------------------------------
# English is the source language; German is the home market's (EU AI Act). A
# user's own choice (User.language) wins over the browser's Accept-Language,
# which LocaleMiddleware reads until they choose. Times are stored in UTC and
# shown in each user's time zone (User.time_zone), on pages and in emails.
LANGUAGE_CODE = "en-gb"
LANGUAGES = [("en-gb", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # aiosmtpd (the tests' SMTP server) logs every connection at INFO.
        "mail.log": {"level": "WARNING"},
    },
}

# --- Tracks: upload limits ------------------------------------------------------------
TRACKS_MAX_UPLOAD_BYTES = env_int("TRACKS_MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1)
TRACKS_MIN_DURATION_SECONDS = env_int("TRACKS_MIN_DURATION_SECONDS", 1, minimum=0)
TRACKS_MAX_DURATION_SECONDS = env_int("TRACKS_MAX_DURATION_SECONDS", 3 * 60 * 60, minimum=1)
TRACKS_MAX_FILES_PER_REQUEST = env_int("TRACKS_MAX_FILES_PER_REQUEST", 20, minimum=1)
ARTWORK_MAX_UPLOAD_BYTES = env_int("ARTWORK_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1)
ARTWORK_MAX_PIXELS = env_int("ARTWORK_MAX_PIXELS", 50_000_000, minimum=1)
# Uploads above this size are streamed to a temporary file, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = TRACKS_MAX_FILES_PER_REQUEST + 1
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR", "") or None
# Tracks still "processing" this long after upload, and not held by a live
# worker, are queued again by a sweep: their task may never have reached the
# broker, or its worker died.
TRACKS_SWEEP_GRACE_SECONDS = env_int("TRACKS_SWEEP_GRACE_SECONDS", 300, minimum=0)
TRACKS_SWEEP_INTERVAL_SECONDS = env_int("TRACKS_SWEEP_INTERVAL_SECONDS", 300, minimum=1)
# A processing claim older than this belonged to a worker that died (a live one
# is stopped by the hard time limit first), so the sweep may hand the track on.
TRACKS_CLAIM_TIMEOUT_SECONDS = env_int("TRACKS_CLAIM_TIMEOUT_SECONDS", CELERY_TASK_TIME_LIMIT + 60, minimum=1)
if TRACKS_CLAIM_TIMEOUT_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"TRACKS_CLAIM_TIMEOUT_SECONDS={TRACKS_CLAIM_TIMEOUT_SECONDS} must be longer than "
        f"CELERY_TASK_TIME_LIMIT={CELERY_TASK_TIME_LIMIT}, or a live worker's track could be taken from it."
    )
CELERY_BEAT_SCHEDULE["tracks-sweep"] = {
    "task": "tracks.requeue_stalled_tracks",
    "schedule": float(TRACKS_SWEEP_INTERVAL_SECONDS),
}

# --- Accounts: data export ------------------------------------------------------------------
# How long a "download my data" archive stays downloadable; a beat task removes
# expired archives and queues again builds the broker never delivered.
ACCOUNTS_EXPORT_TTL_SECONDS = env_int("ACCOUNTS_EXPORT_TTL_SECONDS", 7 * 24 * 3600, minimum=60)
ACCOUNTS_EXPORT_SWEEP_INTERVAL_SECONDS = env_int("ACCOUNTS_EXPORT_SWEEP_INTERVAL_SECONDS", 900, minimum=1)
ACCOUNTS_EXPORT_SWEEP_GRACE_SECONDS = 120
# Building an archive may take longer than other tasks (a big catalogue's whole
# log), but stays below the broker's visibility timeout of one hour.
ACCOUNTS_EXPORT_TIME_LIMIT_SECONDS = 1800
# A build claimed longer ago than the task's hard limit belonged to a dead worker.
ACCOUNTS_EXPORT_BUILD_LEASE_SECONDS = ACCOUNTS_EXPORT_TIME_LIMIT_SECONDS + 60
CELERY_BEAT_SCHEDULE["accounts-export-sweep"] = {
    "task": "accounts.sweep_data_exports",
    "schedule": float(ACCOUNTS_EXPORT_SWEEP_INTERVAL_SECONDS),
}

# --- Consent ---------------------------------------------------------------------------
# The data controller every consent receipt names (Kantara Consent Receipt v1.1 /
# ISO/IEC TS 27560 fields). The defaults name the portal itself; an operator sets its
# legal name, postal address and privacy contact.
CONSENT_CONTROLLER_NAME = env_str("CONSENT_CONTROLLER_NAME", "Creator Consent Portal")
CONSENT_CONTROLLER_CONTACT = env_str("CONSENT_CONTROLLER_CONTACT", "Data protection officer")
CONSENT_CONTROLLER_EMAIL = env_str("CONSENT_CONTROLLER_EMAIL", f"privacy@{urlsplit(SITE_URL).hostname or 'localhost'}")
CONSENT_CONTROLLER_PHONE = env_str("CONSENT_CONTROLLER_PHONE", "")
CONSENT_CONTROLLER_ADDRESS = {
    "streetAddress": env_str("CONSENT_CONTROLLER_STREET", ""),
    "addressLocality": env_str("CONSENT_CONTROLLER_LOCALITY", ""),
    "addressRegion": env_str("CONSENT_CONTROLLER_REGION", ""),
    "postalCode": env_str("CONSENT_CONTROLLER_POSTAL_CODE", ""),
}
# Where the controller is established and whose law governs the consent: an ISO 3166-1
# alpha-2 code (EU for the European Union), also the address's country.
CONSENT_JURISDICTION = env_str("CONSENT_JURISDICTION", "EU").strip().upper()
if "@" not in CONSENT_CONTROLLER_EMAIL.strip(" @"):
    raise ImproperlyConfigured(f"CONSENT_CONTROLLER_EMAIL={CONSENT_CONTROLLER_EMAIL!r} is not an email address.")
if not CONSENT_CONTROLLER_NAME.strip() or not CONSENT_CONTROLLER_CONTACT.strip():
    raise ImproperlyConfigured("CONSENT_CONTROLLER_NAME and CONSENT_CONTROLLER_CONTACT must not be empty.")
if len(CONSENT_JURISDICTION) < 2:
    raise ImproperlyConfigured(f"CONSENT_JURISDICTION={CONSENT_JURISDICTION!r} is not a code such as EU or GB.")
# Every receipt is checked against consent/schemas/consent-receipt.schema.json when it is
# built. "log": a mismatch is logged as an error and the receipt still goes out (production);
# "raise": it is refused (the test suite, so no test can produce an invalid receipt unnoticed).
CONSENT_RECEIPT_VALIDATION = env_str("CONSENT_RECEIPT_VALIDATION", "log")
if CONSENT_RECEIPT_VALIDATION not in {"log", "raise"}:
    raise ImproperlyConfigured(f"CONSENT_RECEIPT_VALIDATION={CONSENT_RECEIPT_VALIDATION!r}; use log or raise.")

# --- Notifications ----------------------------------------------------------------------
# Delivery retries transient SMTP failures with exponential backoff and jitter.
# Every countdown stays below the broker's visibility timeout (see Celery above).
NOTIFICATIONS_MAX_ATTEMPTS = env_int("NOTIFICATIONS_MAX_ATTEMPTS", 8, minimum=1)
NOTIFICATIONS_RETRY_BASE_SECONDS = float(env_int("NOTIFICATIONS_RETRY_BASE_MS", 30_000, minimum=1)) / 1000
NOTIFICATIONS_RETRY_MAX_SECONDS = 1800
# A claim not renewed for this long is presumed abandoned (worker killed) and
# handed out again by the sweep. A delivery task renews its claim every third
# of this while it sends, so the lease can be short: a killed worker's notices
# go out again within one lease plus one sweep interval.
NOTIFICATIONS_CLAIM_LEASE_SECONDS = env_int("NOTIFICATIONS_CLAIM_LEASE_SECONDS", 30, minimum=1)
# The sweep leaves fresh rows to their on-commit task for this long.
NOTIFICATIONS_SWEEP_GRACE_SECONDS = env_int("NOTIFICATIONS_SWEEP_GRACE_SECONDS", 30, minimum=0)
NOTIFICATIONS_SWEEP_INTERVAL_SECONDS = env_int("NOTIFICATIONS_SWEEP_INTERVAL_SECONDS", 60, minimum=1)
# A worker keeps its SMTP connection between batches for at most this long idle
# (servers drop idle clients after a few minutes; RFC 5321 asks them to wait 5).
NOTIFICATIONS_SMTP_IDLE_SECONDS = env_int("NOTIFICATIONS_SMTP_IDLE_SECONDS", 30, minimum=0)
# A delivery task sends its batch over this many SMTP connections at once (one sender thread each, kept per
# worker process from one batch to the next): most of a message's time is the mail server's round trips, so a
# few connections raise one process's rate far more than its CPU does. A killed worker may send again up to
# one message per connection (with the same Message-ID). Mind the mail server's limit of connections per
# client: this times the worker processes of a machine (see docs/DEPLOY.md, "Email delivery").
NOTIFICATIONS_SMTP_CONNECTIONS = env_int("NOTIFICATIONS_SMTP_CONNECTIONS", 4, minimum=1)
# Rows per delivery task: 50 per SMTP connection, so what one connection sends per task (and the time that
# takes against a slow mail server, within the task's time limit) stays what it was with one connection per
# task, while the costs of a task (the broker's hand-off, a database connection, the claim, a policy
# notice's context queries) are spread over more messages.
NOTIFICATIONS_BATCH_SIZE = 50 * NOTIFICATIONS_SMTP_CONNECTIONS
# Delivery tasks may have workers of their own (a threads-pool worker suits only them: the threads pool
# enforces no time limits, and CPU-bound tasks share one core). Name a queue here and start those workers
# with `-Q` it; unset, delivery goes to the default queue like every other task.
NOTIFICATIONS_QUEUE = env_str("NOTIFICATIONS_QUEUE", "")
if NOTIFICATIONS_QUEUE:
    CELERY_TASK_ROUTES = {"notifications.tasks.deliver_notifications": {"queue": NOTIFICATIONS_QUEUE}}
CELERY_BEAT_SCHEDULE["notifications-sweep"] = {
    "task": "notifications.tasks.sweep_notifications",
    "schedule": float(NOTIFICATIONS_SWEEP_INTERVAL_SECONDS),
}
# Publishing must not hang a web request when the broker is down: give up
# quickly, the outbox row is safe and the sweep sends it later.
CELERY_BEAT_SCHEDULE["policy-lapse"] = {"task": "consent.tasks.lapse_unconfirmed_grants", "schedule": 300.0}

# --- Audit checkpoints ----------------------------------------------------------------------
# Signed checkpoints of every chain head, written where the database cannot
# rewrite them: files created once, never replaced. Put the directory on
# storage the database host and its superuser cannot write (see DEPLOY.md).
AUDIT_CHECKPOINT_DIR = Path(env_str("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "audit-checkpoints")))
# The Ed25519 private key (PKCS#8 PEM) that signs them. Development and tests
# create one on first use; in production it must exist.
AUDIT_CHECKPOINT_KEY_FILE = Path(
    env_str("AUDIT_CHECKPOINT_KEY_FILE", str(VAR_DIR / "keys" / "audit-checkpoint-key.pem"))
)
AUDIT_CHECKPOINT_CREATE_KEY = DEBUG
# Public keys (PEM files) of earlier signing keys, so checkpoints signed before a key rotation still verify.
AUDIT_CHECKPOINT_TRUSTED_KEYS = env_list("AUDIT_CHECKPOINT_TRUSTED_KEYS", [])
AUDIT_CHECKPOINT_INTERVAL_SECONDS = env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 3600, minimum=60)
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "consent.create_audit_checkpoint",
    "schedule": float(AUDIT_CHECKPOINT_INTERVAL_SECONDS),
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# --- Public pages and AI signals ----------------------------------------------------------
# The certificate chain (leaf first, then its CA) and private key that sign the
# C2PA manifest in every public audio copy. `make run` creates a local test CA
# and certificate at the development defaults; production names real files.
_c2pa_dir = VAR_DIR / "c2pa"
PUBLIC_C2PA_CERT_CHAIN = env_str("PUBLIC_C2PA_CERT_CHAIN", str(_c2pa_dir / "chain.pem") if DEBUG else "")
PUBLIC_C2PA_PRIVATE_KEY = env_str("PUBLIC_C2PA_PRIVATE_KEY", str(_c2pa_dir / "key.pem") if DEBUG else "")
PUBLIC_C2PA_SIGNING_ALG = env_str("PUBLIC_C2PA_SIGNING_ALG", "ed25519")
PUBLIC_C2PA_TSA_URL = env_url("PUBLIC_C2PA_TSA_URL", "", schemes={"http", "https"})
if PUBLIC_C2PA_SIGNING_ALG not in {"ed25519", "es256", "es384", "ps256"}:
    raise ImproperlyConfigured(
        f"PUBLIC_C2PA_SIGNING_ALG={PUBLIC_C2PA_SIGNING_ALG!r} is not one of ed25519, es256, es384, ps256."
    )
if not DEBUG and not (PUBLIC_C2PA_CERT_CHAIN and PUBLIC_C2PA_PRIVATE_KEY):
    raise ImproperlyConfigured(
        "PUBLIC_C2PA_CERT_CHAIN and PUBLIC_C2PA_PRIVATE_KEY must name the C2PA signing certificate chain and key "
        "when DJANGO_DEBUG is off."
    )
# robots.txt and ai.txt are read up to 500 KiB (RFC 9309); tdmrep.json keeps the same budget.
PUBLIC_SITE_FILE_MAX_BYTES = 500 * 1024
# Copy rebuilds: tracks per task, attempts, backoff, claim lease (above the
# task time limit), the sweep's grace for fresh rows and its interval.
PUBLIC_COPY_BATCH_SIZE = 20
PUBLIC_COPY_MAX_ATTEMPTS = env_int("PUBLIC_COPY_MAX_ATTEMPTS", 6, minimum=1)
PUBLIC_COPY_RETRY_BASE_SECONDS = 10.0
PUBLIC_COPY_RETRY_MAX_SECONDS = 1800.0
PUBLIC_COPY_CLAIM_LEASE_SECONDS = env_int("PUBLIC_COPY_CLAIM_LEASE_SECONDS", 600, minimum=1)
PUBLIC_COPY_SWEEP_GRACE_SECONDS = env_int("PUBLIC_COPY_SWEEP_GRACE_SECONDS", 30, minimum=0)
PUBLIC_COPY_SWEEP_INTERVAL_SECONDS = env_int("PUBLIC_COPY_SWEEP_INTERVAL_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["public-copies-sweep"] = {
    "task": "public.sweep_distribution_copies",
    "schedule": float(PUBLIC_COPY_SWEEP_INTERVAL_SECONDS),
}

# --- Labels -----------------------------------------------------------------------------
# A confirmed bulk change touching more (track, purpose) cells than this runs in
# Celery with a progress bar; smaller ones apply within the request.
LABELS_BULK_SYNC_MAX_CELLS = env_int("LABELS_BULK_SYNC_MAX_CELLS", 2000, minimum=0)
# Whole artists per consent call up to about this many tracks; progress is
# committed after each chunk.
LABELS_BULK_CHUNK_TRACKS = env_int("LABELS_BULK_CHUNK_TRACKS", 20_000, minimum=1)
# How long after a bulk change finishes its undo is offered.
LABELS_UNDO_WINDOW_SECONDS = env_int("LABELS_UNDO_WINDOW_SECONDS", 24 * 3600, minimum=0)
LABELS_CSV_MAX_BYTES = env_int("LABELS_CSV_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
LABELS_CSV_MAX_ROWS = env_int("LABELS_CSV_MAX_ROWS", 200_000, minimum=1)
# A worker applying a bulk change holds it for this long, renewed after every
# chunk (so a chunk must take less); a change whose lease ran out lost its
# worker, and the sweep resumes it after its last committed chunk.
LABELS_BULK_LEASE_SECONDS = env_int("LABELS_BULK_LEASE_SECONDS", 300, minimum=1)
# One task applies chunks for about this long, then hands the rest to a fresh
# task: every task ends well inside CELERY_TASK_SOFT_TIME_LIMIT.
LABELS_BULK_TASK_BUDGET_SECONDS = env_int("LABELS_BULK_TASK_BUDGET_SECONDS", 120, minimum=0)
# After this many lost workers a change stops, failed, saying what was applied.
LABELS_BULK_MAX_LOST = env_int("LABELS_BULK_MAX_LOST", 3, minimum=1)
# The sweep leaves a fresh queued change to its on-commit task for this long.
LABELS_BULK_SWEEP_GRACE_SECONDS = env_int("LABELS_BULK_SWEEP_GRACE_SECONDS", 60, minimum=0)
CELERY_BEAT_SCHEDULE["labels-bulk-sweep"] = {"task": "labels.sweep_bulk_changes", "schedule": 60.0}

# --- Downstream systems: the /api/v1 consent API ------------------------------------------
# Requests per client per window (a client row may set its own limit); over it: 429.
API_RATE_LIMIT_REQUESTS = env_int("API_RATE_LIMIT_REQUESTS", 6000, minimum=1)
API_RATE_LIMIT_WINDOW_SECONDS = env_int("API_RATE_LIMIT_WINDOW_SECONDS", 60, minimum=1)
# Request bodies above this are refused (413) before anything parses them;
# 10,000 SHA-256 ids in one check take about 700 kB.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
API_MAX_IDS = 10_000
# A client that has not acknowledged a withdrawal this long after it happened
# raises a notice to staff.
API_ACK_DEADLINE_HOURS = env_int("API_ACK_DEADLINE_HOURS", 24, minimum=1)
API_ACK_CHECK_INTERVAL_SECONDS = env_int("API_ACK_CHECK_INTERVAL_SECONDS", 900, minimum=1)
# Idempotency-Key records are kept this long.
API_IDEMPOTENCY_TTL_HOURS = env_int("API_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
# Manifests are signed with this Ed25519 key (a private JWK, created on first
# use if missing; every public key ever used stays published at /api/v1/keys).
API_SIGNING_KEY_FILE = Path(env_str("API_SIGNING_KEY_FILE", str(VAR_DIR / "keys" / "manifest-signing-key.jwk")))
# Webhooks: changes are fanned out to delivery rows every poll, delivered over
# HTTPS only, retried with backoff like email (every countdown below the
# broker's visibility timeout).
API_WEBHOOK_POLL_SECONDS = env_int("API_WEBHOOK_POLL_SECONDS", 10, minimum=1)
API_WEBHOOK_TIMEOUT_SECONDS = env_int("API_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
API_WEBHOOK_MAX_ATTEMPTS = env_int("API_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1)
API_WEBHOOK_RETRY_BASE_SECONDS = float(env_int("API_WEBHOOK_RETRY_BASE_MS", 30_000, minimum=1)) / 1000
API_WEBHOOK_RETRY_MAX_SECONDS = 1800
API_WEBHOOK_CLAIM_LEASE_SECONDS = env_int("API_WEBHOOK_CLAIM_LEASE_SECONDS", 300, minimum=1)
API_WEBHOOK_BATCH_SIZE = 50
# A CA bundle to trust for webhook endpoints instead of the system's (tests,
# private endpoints); empty: the system's trust store.
API_WEBHOOK_CA_BUNDLE = env_str("API_WEBHOOK_CA_BUNDLE", "")
CELERY_BEAT_SCHEDULE["downstream-webhooks"] = {
    "task": "downstream.tasks.sweep_webhooks",
    "schedule": float(API_WEBHOOK_POLL_SECONDS),
}
CELERY_BEAT_SCHEDULE["downstream-ack-deadlines"] = {
    "task": "downstream.tasks.check_ack_deadlines",
    "schedule": float(API_ACK_CHECK_INTERVAL_SECONDS),
}
