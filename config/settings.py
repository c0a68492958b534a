"""Settings, read from the environment (SPEC §12). Defaults give the embedded SQLite mode."""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config import csp

# Lets Django's generic classes be subscripted at runtime (ModelAdmin[Model]) for typing.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BULWARK_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def _secret_from_file(name: str) -> str:
    """A development secret kept under var/, created once, so restarts keep sessions and keys.

    Created exclusively and private from the start: two processes starting together on a
    fresh var/ must end up with the same key, never each with its own.
    """
    path = VAR_DIR / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        from cryptography.fernet import Fernet

        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    for _ in range(50):  # another process may be between creating and writing it
        text = path.read_text().strip()
        if text:
            return text
        import time

        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it or set the variable it stands for")


DEBUG = _env_bool("BULWARK_DEBUG")
SECRET_KEY = os.environ.get("BULWARK_SECRET_KEY") or _secret_from_file("secret.key")
# Fernet keys, comma-separated: the first encrypts, all decrypt (key rotation).
ENCRYPTION_KEYS = [
    k.strip()
    for k in (
        os.environ.get("BULWARK_ENCRYPTION_KEY") or _secret_from_file("encryption.key")
    ).split(",")
    if k.strip()
]
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("BULWARK_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "audit",
    "artifacts",
    "integrations",
    "playbooks",
    "core",
    "alerts",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the UI's own and its vendored libraries) from the app itself, under
    # gunicorn too, with far-future caching of hashed names.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
            "builtins": ["web.templatetags.web_extras"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'bulwark.sqlite3'}",
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast rather than hang when the database is unreachable (leases depend on it).
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 10
    # Django's setting (None) would disable prepared statements altogether; this one leaves
    # implicit preparing off (Django's cursors bind on the client) and lets the engine's
    # hot statements ask for it (common.prepared).
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2**31 - 1
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so read-then-write transactions never fail
    # to upgrade their lock; WAL lets readers run beside the one writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# collectstatic fills it for production; WhiteNoise serves from the apps meanwhile.
STATIC_ROOT.mkdir(exist_ok=True)
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Django's Content Security Policy (config.csp): no inline code, nothing framed.
SECURE_CSP = csp.STRICT
WHITENOISE_USE_FINDERS = True
# Behind a TLS-terminating proxy (production): secure cookies, HSTS, the proxy's scheme
# header, and the origins allowed to POST with a session.
if _env_bool("BULWARK_HTTPS"):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("BULWARK_HSTS_SECONDS", "31536000"))
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("BULWARK_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
# When set, /metrics wants `Authorization: Bearer <token>` (Prometheus' bearer_token).
METRICS_TOKEN = os.environ.get("BULWARK_METRICS_TOKEN", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.json_exception_handler",
}
SPECTACULAR_SETTINGS = {
    # Swagger UI's files from drf-spectacular-sidecar, not a CDN (the CSP allows no other origin).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Bulwark API",
    "DESCRIPTION": "Incident-response playbooks, runs, connections and audit.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a `status`; the runs' one gets a name of its own.
    "ENUM_NAME_OVERRIDES": {"RunStatusEnum": "core.models.RUN_STATUS_CHOICES"},
}

# --- Engine -------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# How long a claimed attempt is owned without a heartbeat; renewed every third of it.
BULWARK_LEASE_SECONDS = _env_float("BULWARK_LEASE_SECONDS", 30.0)
# A queued unit whose message has not been picked up after this long is sent again.
BULWARK_REDISPATCH_SECONDS = _env_float("BULWARK_REDISPATCH_SECONDS", 15.0)
# A transition that queues at least this many units of a run sends drain wake-ups
# (workers claim the run's queued units in turn) instead of one message per unit ...
BULWARK_DRAIN_THRESHOLD = _env_int("BULWARK_DRAIN_THRESHOLD", 8)
# ... this many of them (one per unit at most, one per 8 units at least): set it to at
# least the number of worker threads, so that every thread can take part.
BULWARK_DRAIN_WAKEUPS = _env_int("BULWARK_DRAIN_WAKEUPS", 16)
# Prepare the engine's per-step statements on PostgreSQL (common.prepared); turn off
# behind a pooler in transaction mode that cannot carry prepared statements.
BULWARK_PREPARED_STATEMENTS = _env_bool("BULWARK_PREPARED_STATEMENTS", True)
# How often the scheduler looks for due retries, lost messages and expired leases.
# Mounts bench/intake.py's baseline view (never in production).
BULWARK_BENCH_VIEWS = _env_bool("BULWARK_BENCH_VIEWS")
# The vendor simulators' port (`manage.py lab`; `standalone` serves them too).
BULWARK_LAB_PORT = _env_int("BULWARK_LAB_PORT", 8765)
# Evidence and large outputs (artifacts.storage): a directory, or a storage class.
BULWARK_ARTIFACT_DIR = Path(os.environ.get("BULWARK_ARTIFACT_DIR", VAR_DIR / "artifacts"))
BULWARK_ARTIFACT_STORAGE = os.environ.get("BULWARK_ARTIFACT_STORAGE", "")
BULWARK_ARTIFACT_MAX_BYTES = _env_int("BULWARK_ARTIFACT_MAX_BYTES", 2 * 1024**3)
# A step output larger than this (as JSON) is kept as an artifact and referenced (SPEC §4).
BULWARK_MAX_OUTPUT_BYTES = _env_int("BULWARK_MAX_OUTPUT_BYTES", 256 * 1024)
BULWARK_SCHEDULER_TICK_SECONDS = _env_float("BULWARK_SCHEDULER_TICK_SECONDS", 1.0)
# Where people reach this instance: decision links in e-mail and chat point here.
BULWARK_BASE_URL = os.environ.get("BULWARK_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# How long a decision link stays valid (never past its request's deadline).
BULWARK_APPROVAL_LINK_SECONDS = _env_int("BULWARK_APPROVAL_LINK_SECONDS", 24 * 3600)
# Audit digests (audit.digests): signed with this Ed25519 seed (32 bytes, base64); the
# public keys of earlier signing keys keep the digests they signed verifiable.
BULWARK_AUDIT_SIGNING_KEY = os.environ.get("BULWARK_AUDIT_SIGNING_KEY") or _secret_from_file(
    "audit-signing.key"
)
BULWARK_AUDIT_PREVIOUS_PUBLIC_KEYS = [
    k.strip()
    for k in os.environ.get("BULWARK_AUDIT_PREVIOUS_PUBLIC_KEYS", "").split(",")
    if k.strip()
]
BULWARK_AUDIT_DIGEST_SECONDS = _env_int("BULWARK_AUDIT_DIGEST_SECONDS", 300, minimum=0)
# Audit retention (audit.retention): events older than this many days are pruned, leaving
# signed tombstones, except runs on legal hold and open runs; 0 keeps everything. The
# default passes PCI DSS 10.5.1's twelve months.
BULWARK_AUDIT_RETENTION_DAYS = _env_int("BULWARK_AUDIT_RETENTION_DAYS", 400, minimum=0)
BULWARK_AUDIT_RETENTION_CHECK_SECONDS = _env_int("BULWARK_AUDIT_RETENTION_CHECK_SECONDS", 3600)
# Bulk replay (core.replay): re-runs started per second, all replays together, so that a
# replay after a vendor outage does not become the next outage.
BULWARK_REPLAY_RUNS_PER_SECOND = _env_float("BULWARK_REPLAY_RUNS_PER_SECOND", 2.0)
BULWARK_REPLAY_MAX_RUNS = _env_int("BULWARK_REPLAY_MAX_RUNS", 1000)
# Sub-playbooks (core.subplaybooks): how deep child runs may nest, and how often a parent
# step looks at its child.
BULWARK_SUBPLAYBOOK_MAX_DEPTH = _env_int("BULWARK_SUBPLAYBOOK_MAX_DEPTH", 5)
BULWARK_SUBPLAYBOOK_POLL_SECONDS = _env_float("BULWARK_SUBPLAYBOOK_POLL_SECONDS", 2.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # A hook's URL may carry its secret (?token=…): redacted on the way out, whatever logs it.
    "filters": {"url_tokens": {"()": "common.log_redaction.RedactUrlTokens"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["url_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("BULWARK_LOG_LEVEL", "INFO")},
    # httpx logs full request URLs at INFO, query strings (and any secret in them) included.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's loggers, the development server's request lines (`manage.py standalone`)
        # among them, through the console handler, whose filter redacts URL tokens; Django's
        # own handlers have none.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
