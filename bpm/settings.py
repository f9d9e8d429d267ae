"""Settings, read from the environment. Bad values fail loudly at start-up."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from bpm import redis_connection
from bpm.log_format import FORMATS, logging_config
from bpm.monitoring import process_slots
from bpm.private_dir import make_private

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false)")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def envfloat(name: str, default: str) -> float:
    value = os.getenv(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


# Off unless asked for: DEBUG=true is the explicit opt-in (`make run` and `make test` set it),
# and it is refused with any host name other than this machine's.
DEBUG = envbool("DEBUG", "false")
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "development-only-insecure-key"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ",".join(LOCAL_HOSTS) if DEBUG else "")
if DEBUG:
    public = [h for h in ALLOWED_HOSTS if h not in LOCAL_HOSTS and not h.endswith(".localhost")]
    if public:
        raise ImproperlyConfigured(
            f"DEBUG is on with ALLOWED_HOSTS naming {', '.join(public)}: DEBUG shows settings and "
            "tracebacks to anyone, so it is for this machine only (localhost, 127.0.0.1, [::1])"
        )

# Everything the process writes by default (SQLite file, embedded Redis, sent mail) lives here.
# It is private to the user (0700), and so is everything the process creates (umask 077).
VAR_DIR = Path(os.getenv("BPM_VAR_DIR", str(BASE_DIR / "var"))).resolve()
try:
    make_private(VAR_DIR)
except PermissionError as exc:
    raise ImproperlyConfigured(f"BPM_VAR_DIR: {exc}") from None

# In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set), before any app creates a metric.
process_slots.install()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "axes",
    "bpm",
    "bpm.api",
    "orders",
    "payments",
    "notifications",
    # The shop's demonstration (demo_trickle): it uses orders and payments, which never import
    # each other.
    "demo",
]

MIDDLEWARE = [
    # First: every response carries X-Request-ID, and every line logged for the request its id.
    "bpm.request_id.RequestIDMiddleware",
    # Then: /healthz, /readyz and /metrics are answered before host checks, the HTTPS redirect,
    # sessions and CSRF (docs/monitoring.md); then every other request is counted and timed.
    "bpm.monitoring.middleware.ProbeMiddleware",
    "bpm.monitoring.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Right after the security headers: /static/ is answered here, before sessions or the database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "bpm.api.bodies.BodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last, so its process_exception sees a view's error first: a database or Redis outage is
    # a 503 page, not a 500 (the API answers its own JSON 503, see bpm/api/errors.py).
    "bpm.outages.OutageMiddleware",
]

# Axes first: it refuses a locked-out user or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "bpm.authentication.ModelBackend",
]

ROOT_URLCONF = "bpm.urls"
WSGI_APPLICATION = "bpm.wsgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]


# --- HTTPS, cookies and headers with DEBUG off (docs/security.md) -------------------------------

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Pages send the CSRF token in their forms (Swagger UI in its script); no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = envbool("BPM_SSL_REDIRECT", "false" if DEBUG else "true")
SECURE_HSTS_SECONDS = envint("BPM_HSTS_SECONDS", "0" if DEBUG else "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("BPM_HSTS_INCLUDE_SUBDOMAINS", "true")
SECURE_HSTS_PRELOAD = envbool("BPM_HSTS_PRELOAD", "true")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS proxy: the header it sets to "https" on secure requests, e.g. X-Forwarded-Proto.
_proxy_ssl_header = os.getenv("BPM_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("https://", "http://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS: {_origin!r} needs its scheme, e.g. https://{_origin}"
        )
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("BPM_HSTS_SECONDS must be >= 0")


# Nothing but this site's own files; inline scripts and styles only with the page's nonce.
# data: for the icons in Swagger UI's and the admin's stylesheets; blob: for ReDoc's search worker.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}


# IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the busy timeout
# instead of failing with "database is locked" when a read turns into a write; WAL lets readers
# go on while one process writes.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


# DATABASE_URL points at PgBouncer in transaction pooling mode (docs/operations.md).
BPM_PGBOUNCER = envbool("BPM_PGBOUNCER", "false")


def database_from_env() -> dict:
    url = os.getenv("DATABASE_URL", "")
    if not url:
        if BPM_PGBOUNCER:
            raise ImproperlyConfigured(
                "BPM_PGBOUNCER=true needs a postgres:// DATABASE_URL (PgBouncer pools PostgreSQL)"
            )
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "bpm.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
            # A file, not :memory:, so worker processes started by tests see the test database.
            "TEST": {"NAME": VAR_DIR / "test.sqlite3"},
        }
    try:
        config = dict(
            dj_database_url.parse(
                url,
                conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0"),
                # A persistent connection whose server end died (a restart, a terminated
                # backend) is replaced at the first query of the next request, not reused.
                conn_health_checks=True,
            )
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**SQLITE_OPTIONS, **dict(config.get("OPTIONS") or {})}  # type: ignore[call-overload]
    if BPM_PGBOUNCER:
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured(
                "BPM_PGBOUNCER=true needs a postgres:// DATABASE_URL (PgBouncer pools PostgreSQL)"
            )
        # Transaction pooling hands each transaction any server connection: a statement
        # psycopg prepared on one is missing (or taken) on the next, and a server-side cursor
        # (QuerySet.iterator) outside a transaction dies with it. Django already leaves
        # prepare_threshold at None; it is pinned here so no OPTIONS can turn it on.
        # docs/operations.md says what else the engine needs from PgBouncer.
        config["OPTIONS"] = {**dict(config.get("OPTIONS") or {}), "prepare_threshold": None}  # type: ignore[call-overload]
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One Redis (REDIS_URL), or a master found through Sentinel (REDIS_SENTINELS and
# REDIS_SENTINEL_MASTER, with REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD and REDIS_DB); neither: the
# embedded Redis. Every Redis client is made from REDIS_CONNECTION (bpm/redis_connection.py).
EMBEDDED_REDIS = not os.getenv("REDIS_URL") and not os.getenv("REDIS_SENTINELS")
REDIS_CONNECTION = redis_connection.params_from_environment(
    os.environ, default_url=f"unix://{VAR_DIR / 'redis' / 'redis.sock'}?db=0"
)
# None under Sentinel: there is no one URL to give.
REDIS_URL: str | None = REDIS_CONNECTION.get("URL")

BPM_QUEUES = envlist("BPM_QUEUES", "default")
RQ_QUEUES = {name: {**REDIS_CONNECTION, "DEFAULT_TIMEOUT": 300} for name in BPM_QUEUES}
RQ_SHOW_ADMIN_LINK = True
# `manage.py rqworker` runs bpm's worker: it promotes due delayed doorbells itself (no scheduler
# lock to lose) and keeps database connections healthy around each job (bpm/worker.py).
RQ = {"WORKER_CLASS": "bpm.worker.Worker"}

# The engine's tunables. Seconds unless the name says otherwise.
BPM_SWEEP_INTERVAL = envfloat("BPM_SWEEP_INTERVAL", "5")
BPM_REDRIVE_GRACE = envfloat("BPM_REDRIVE_GRACE", "10")
BPM_STALL_AFTER = envfloat("BPM_STALL_AFTER", "3600")
# Batch repairs (bpm/batches.py): the most sagas one may act on, and how long a running batch
# may go without a saga done before the sweeper rings its doorbell again (its worker died).
BPM_BATCH_MAX_SAGAS = envint("BPM_BATCH_MAX_SAGAS", "100000")
BPM_BATCH_REDRIVE_AFTER = envfloat("BPM_BATCH_REDRIVE_AFTER", "60")
# Inline continuation: one saga's steps in a row, then other sagas' doorbells from the job's queue.
BPM_INLINE_MAX_STEPS = envint("BPM_INLINE_MAX_STEPS", "8")
BPM_JOB_MAX_STEPS = envint("BPM_JOB_MAX_STEPS", "64")
if BPM_INLINE_MAX_STEPS < 1 or BPM_JOB_MAX_STEPS < 1:
    raise ImproperlyConfigured("BPM_INLINE_MAX_STEPS and BPM_JOB_MAX_STEPS must be at least 1")
BPM_INLINE_MAX_SECONDS = envfloat("BPM_INLINE_MAX_SECONDS", "2")
# How often a worker looks for due delayed doorbells while idle, and heartbeats while busy.
# Finished sagas older than this many days are archived (files under BPM_ARCHIVE_DIR), then
# deleted by the sweeper, BPM_RETAIN_BATCH at a time; 0 keeps them forever (docs/retention.md).
BPM_RETAIN_DAYS = envint("BPM_RETAIN_DAYS", "30")
if BPM_RETAIN_DAYS < 0:
    raise ImproperlyConfigured(
        "BPM_RETAIN_DAYS must be a whole number of days >= 1, or 0 (forever)"
    )
BPM_RETAIN_BATCH = envint("BPM_RETAIN_BATCH", "500")
if not 1 <= BPM_RETAIN_BATCH <= 10_000:
    raise ImproperlyConfigured("BPM_RETAIN_BATCH must be between 1 and 10000 sagas")
BPM_ARCHIVE_DIR = Path(os.getenv("BPM_ARCHIVE_DIR", str(VAR_DIR / "archive"))).resolve()
BPM_WORKER_POLL_INTERVAL = envint("BPM_WORKER_POLL_INTERVAL", "1")
if BPM_WORKER_POLL_INTERVAL < 1:
    raise ImproperlyConfigured("BPM_WORKER_POLL_INTERVAL must be a whole number of seconds >= 1")
# The groups human tasks are given to (a wait step's "task": {"group": ...}): made, without
# permissions, by every migrate, so that a declaration naming one validates on a fresh database.
BPM_TASK_GROUPS = envlist("BPM_TASK_GROUPS", "reviewers")

# Outbound HTTP (bpm/outbound.py, docs/security.md): the only hosts that HTTP steps and webhooks
# may call (names, IP addresses or networks, each optionally with :port); a private, loopback or
# link-local address is reached only when its address or network is listed too.
BPM_HTTP_ALLOWED_HOSTS = envlist("BPM_HTTP_ALLOWED_HOSTS", "")
try:
    from bpm.outbound import allowed_entries

    allowed_entries(BPM_HTTP_ALLOWED_HOSTS)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Secrets that HTTP steps' headers may name ({"secret": "NAME"}), never written in a definition:
# BPM_HTTP_SECRETS lists the names, each value comes from BPM_HTTP_SECRET_<NAME>.
BPM_HTTP_SECRETS: dict[str, str] = {}
for _name in envlist("BPM_HTTP_SECRETS", ""):
    if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,63}", _name):
        raise ImproperlyConfigured(
            f"BPM_HTTP_SECRETS: {_name!r} is not a secret name (A-Z, 0-9 and _, upper case)"
        )
    if not os.getenv(f"BPM_HTTP_SECRET_{_name}"):
        raise ImproperlyConfigured(
            f"BPM_HTTP_SECRETS names {_name} but BPM_HTTP_SECRET_{_name} is not set"
        )
    BPM_HTTP_SECRETS[_name] = os.environ[f"BPM_HTTP_SECRET_{_name}"]
# The largest response body an outbound call reads, in bytes (decoded).
BPM_HTTP_MAX_RESPONSE_BYTES = envint("BPM_HTTP_MAX_RESPONSE_BYTES", str(1024 * 1024))
if BPM_HTTP_MAX_RESPONSE_BYTES < 1:
    raise ImproperlyConfigured("BPM_HTTP_MAX_RESPONSE_BYTES must be at least 1")

# /metrics (docs/monitoring.md): without a token it answers only to loopback addresses; with one,
# only to `Authorization: Bearer <token>`.
BPM_METRICS_TOKEN = os.getenv("BPM_METRICS_TOKEN", "")
if BPM_METRICS_TOKEN and (
    len(BPM_METRICS_TOKEN) < 16 or BPM_METRICS_TOKEN.strip() != BPM_METRICS_TOKEN
):
    raise ImproperlyConfigured(
        "BPM_METRICS_TOKEN must be at least 16 characters with no surrounding spaces"
        " (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
    )

# Brute-force protection of the login (django-axes, docs/security.md): after
# BPM_LOGIN_FAILURE_LIMIT failures a user name, and separately an address, is locked out for
# BPM_LOGIN_COOLOFF_MINUTES; superusers unlock early by deleting the access attempt in the admin.
AXES_FAILURE_LIMIT = envint("BPM_LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=envfloat("BPM_LOGIN_COOLOFF_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_CLIENT_IP_CALLABLE = "bpm.client_address.client_address"
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("BPM_LOGIN_FAILURE_LIMIT must be at least 1")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Public files (the admin's CSS and scripts): readable by a web server running as another user
# once STATIC_ROOT is outside the private var/.
STATIC_ROOT = Path(os.getenv("BPM_STATIC_ROOT", str(VAR_DIR / "static"))).resolve()
# collectstatic writes each file under a name with its content's hash, gzipped next to it, and
# WhiteNoise serves them under /static/ with far-future caching (docs/deploy.md). Until it has
# run, pages link the plain names (runserver serves those from the apps' folders).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "bpm.static_storage.HashedStaticStorage",
        "OPTIONS": {"file_permissions_mode": 0o644, "directory_permissions_mode": 0o755},
    },
}

EMAIL_BACKEND = os.getenv(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "shop@example.com")

# Every process (web, workers, sweeper, commands) logs to stderr, as text or one JSON object a
# line (docs/logging.md).
BPM_LOG_FORMAT = os.getenv("BPM_LOG_FORMAT", "text").strip().lower()
if BPM_LOG_FORMAT not in FORMATS:
    raise ImproperlyConfigured(
        f"BPM_LOG_FORMAT={BPM_LOG_FORMAT!r} is not a log format (use {' or '.join(FORMATS)})"
    )
BPM_LOG_LEVEL = os.getenv("BPM_LOG_LEVEL", "INFO").strip().upper()
if BPM_LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"BPM_LOG_LEVEL={BPM_LOG_LEVEL!r} is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL)"
    )
LOGGING = logging_config(BPM_LOG_FORMAT, BPM_LOG_LEVEL)


# --- the simulated card gateway (payments/gateway.py) -------------------------------------------

# How long the card_slow test card takes to approve.
PAYMENTS_GATEWAY_SLOW_SECONDS = envfloat("PAYMENTS_GATEWAY_SLOW_SECONDS", "3")
# How long the gateway waits after charging before it answers (tests kill a worker meanwhile).
PAYMENTS_GATEWAY_ANSWER_DELAY = envfloat("PAYMENTS_GATEWAY_ANSWER_DELAY", "0")
if PAYMENTS_GATEWAY_SLOW_SECONDS < 0 or PAYMENTS_GATEWAY_ANSWER_DELAY < 0:
    raise ImproperlyConfigured(
        "PAYMENTS_GATEWAY_SLOW_SECONDS and PAYMENTS_GATEWAY_ANSWER_DELAY must be >= 0"
    )


# --- the shop on the engine: what the site adds to bpm's API and `runstack` -------------------
# bpm imports no app that uses it: the site names here, as dotted strings, what each app adds.

# URL modules whose endpoints join /api/v1/ (in the "api" namespace), in this order.
BPM_API_URLCONFS = ["payments.api.urls", "orders.api.urls"]
# Demonstration processes `runstack` also starts, unless --no-demo: {name: management command
# and its arguments}. Each may finish; only a non-zero exit stops the stack.
BPM_RUNSTACK_DEMO_COMMANDS = {"demo": ["demo_trickle"]}
# The apps whose models the viewers, operators and designers groups see (besides bpm's), and
# what the clients group may create there (and so read back: its own rows only).
BPM_GROUP_APPS = ["orders", "payments", "notifications"]
BPM_CLIENT_PERMISSIONS = ["orders.add_order", "payments.add_customer"]
# A customer's order history (orders' API) answers 404 for a customer the caller may not see:
# payments' selector says which, and reading customers needs one of these permissions.
ORDERS_CUSTOMER_LOOKUP = "payments.services.customer_get"
ORDERS_CUSTOMER_READ_PERMISSIONS = ["payments.view_customer", "payments.add_customer"]

# --- the REST API (docs/api.md) -----------------------------------------------------------------

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Throttling counts requests in Redis (bpm/api/throttling.py), so the limits hold across every
# web process. The client address is REMOTE_ADDR, or with trusted proxies in front (a TLS proxy:
# 1) the address that many hops back in X-Forwarded-For; never a header a client chose alone.
BPM_TRUSTED_PROXIES = envint("BPM_TRUSTED_PROXIES", "0")
if BPM_TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("BPM_TRUSTED_PROXIES must be >= 0")
# Requests per minute; 0 turns the limit off.
BPM_API_ANON_PER_MINUTE = envint("BPM_API_ANON_PER_MINUTE", "60")
BPM_API_USER_PER_MINUTE = envint("BPM_API_USER_PER_MINUTE", "600")
# How long a response is kept for replay under its Idempotency-Key.
BPM_API_IDEMPOTENCY_EXPIRY = envfloat("BPM_API_IDEMPOTENCY_EXPIRY", "86400")
# Failed token authentications an address may make per window before it gets 429 (0: no limit).
BPM_API_TOKEN_FAILURES = envint("BPM_API_TOKEN_FAILURES", "10")
BPM_API_TOKEN_FAILURE_WINDOW = envint("BPM_API_TOKEN_FAILURE_WINDOW", "300")
if BPM_API_TOKEN_FAILURES < 0 or BPM_API_TOKEN_FAILURE_WINDOW < 1:
    raise ImproperlyConfigured(
        "BPM_API_TOKEN_FAILURES must be >= 0 and BPM_API_TOKEN_FAILURE_WINDOW at least 1"
    )
if BPM_API_ANON_PER_MINUTE < 0 or BPM_API_USER_PER_MINUTE < 0:
    raise ImproperlyConfigured("BPM_API_ANON_PER_MINUTE and BPM_API_USER_PER_MINUTE must be >= 0")
if BPM_API_IDEMPOTENCY_EXPIRY <= 0:
    raise ImproperlyConfigured("BPM_API_IDEMPOTENCY_EXPIRY must be positive")

# The largest request body accepted (bytes); a larger one is answered 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", str(2_621_440))

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header is what makes an anonymous request a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bpm.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["bpm.api.permissions.ModelPermissions"],
    "DEFAULT_THROTTLE_CLASSES": [
        "bpm.api.throttling.AnonymousThrottle",
        "bpm.api.throttling.UserThrottle",
    ],
    "DEFAULT_PARSER_CLASSES": ["bpm.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "bpm.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "bpm.api.errors.handle_exception",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": BPM_TRUSTED_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "bpm API",
    "DESCRIPTION": "Start sagas, place orders, and watch and repair the sagas. See docs/api.md.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # `check --deploy` must not need a database, and generating the schema reads the definitions
    # table; the schema's own tests (tests/api) generate and validate it instead.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Served from drf-spectacular-sidecar's static files: nothing is fetched from the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge either: Swagger UI would fetch it from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bpm.api.schema.forbid_unknown_request_fields",
        "bpm.api.schema.describe_storable_json",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SagaStatusEnum": "bpm.models.SagaStatus",
        "StepStatusEnum": "bpm.models.StepStatus",
        "OrderStateEnum": "orders.models.OrderState",
    },
}

# Alert notifications (bpm/alerting.py): attempts per notice, the first retry's delay (doubling
# after each failure, at most BPM_ALERT_MAX_BACKOFF), and each webhook call's timeout.
BPM_ALERT_MAX_ATTEMPTS = envint("BPM_ALERT_MAX_ATTEMPTS", "6")
BPM_ALERT_BACKOFF = envfloat("BPM_ALERT_BACKOFF", "10")
BPM_ALERT_MAX_BACKOFF = envfloat("BPM_ALERT_MAX_BACKOFF", "900")
BPM_ALERT_TIMEOUT = envfloat("BPM_ALERT_TIMEOUT", "10")
if BPM_ALERT_MAX_ATTEMPTS < 1 or BPM_ALERT_BACKOFF <= 0 or BPM_ALERT_TIMEOUT <= 0:
    raise ImproperlyConfigured(
        "BPM_ALERT_MAX_ATTEMPTS must be >= 1, BPM_ALERT_BACKOFF and BPM_ALERT_TIMEOUT positive"
    )
