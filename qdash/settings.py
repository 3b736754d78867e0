"""Django settings for qdash, read from the environment.

Defaults give a single-process development setup: SQLite and the in-memory
channel layer. Set DATABASE_URL and REDIS_URL to scale out.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import plotly
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from qdash.secret import secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value is None or value == "" else int(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Production: a secret key, host names and HTTPS are required (README, "Behind TLS").
PRODUCTION = env_bool("QDASH_PRODUCTION", False)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (QDASH_PRODUCTION=1).")
if PRODUCTION and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must name the host names qdash answers to in production, e.g. "
        "ALLOWED_HOSTS=qdash.example.org."
    )
# Behind a TLS-terminating proxy (README, "Behind TLS"): a request is HTTPS when the
# proxy's X-Forwarded-Proto says so, and `manage.py serve` takes the client's address
# from X-Forwarded-For. On by default in production; only for a proxy that sets both
# headers itself, since a client reaching qdash directly could send them too.
QDASH_BEHIND_PROXY = env_bool("QDASH_BEHIND_PROXY", PRODUCTION)
# Those headers count only on connections from these addresses or networks
# (qdash/proxy.py); from anyone else they are dropped.
QDASH_TRUSTED_PROXIES = env_list("QDASH_TRUSTED_PROXIES", "127.0.0.1,::1")
try:
    for _proxy in QDASH_TRUSTED_PROXIES:
        ipaddress.ip_network(_proxy, strict=False)
except ValueError as _error:
    raise ImproperlyConfigured(f"QDASH_TRUSTED_PROXIES: {_error}") from None
if QDASH_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # probes and scrapers on plain HTTP
    SECURE_HSTS_SECONDS = env_int("QDASH_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "django_guid",
    "django_ratelimit",
    "axes",
    "auditlog",
    "csp",
    "ninja",  # the API docs page takes Swagger UI from its static files, not a CDN
    "scheduler",
]

MIDDLEWARE = [
    "scheduler.metrics.timing_middleware",  # HTTP latency for /metrics
    "django_guid.middleware.guid_middleware",  # a request id on every log line and answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # qdash.lean: the page-only middleware, which API calls (bearer tokens, JSON) skip.
    "qdash.lean.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # API views are exempt (bearer tokens)
    "qdash.lean.AuthenticationMiddleware",
    "qdash.lean.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every answer
    "qdash.lean.HtmxMiddleware",
    "qdash.lean.AuditlogMiddleware",  # who changed what, in the audit log
    "axes.middleware.AxesMiddleware",  # answers a locked-out login
]

# Scripts only from qdash's own static files: the pages have no inline script. Styles
# may be inline: Plotly and htmx set style attributes. Websockets go to the same origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    }
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # counts failed logins and locks out
    "django.contrib.auth.backends.ModelBackend",
]
# Logins: after this many failures for one user name from one address, a lock-out.
AXES_FAILURE_LIMIT = env_int("QDASH_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("QDASH_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "RETURN_HEADER": True}
AUDITLOG_CID_GETTER = "django_guid.get_guid"  # audit entries carry the request id

ROOT_URLCONF = "qdash.urls"

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
        },
    },
]

ASGI_APPLICATION = "qdash.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    ),
}
POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if POSTGRES:
    # Names the process in pg_stat_activity: qdash-web, qdash-scheduler, qdash-executor.
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = (
        f"qdash-{os.environ.get('QDASH_ROLE', 'web')}"
    )
    # A pool of connections per process: under ASGI every request runs in a thread
    # of its own, so without a pool each one would connect anew (a PostgreSQL
    # connect costs more than a whole submission). The pool checks a connection
    # before it hands it out, so one the server closed (a restart, an operator's
    # pg_terminate_backend) is replaced instead of failing the next request.
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": env_int("QDASH_DB_POOL_SIZE", 8),
        "timeout": 30,
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool's check_connection
    # The same few statements run at every submission and step: bind values on the
    # server and prepare a statement once it ran five times on a connection.
    if env_bool("QDASH_PG_PREPARE", True):
        DATABASES["default"]["OPTIONS"] |= {"server_side_binding": True, "prepare_threshold": 5}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the lock when the transaction begins, so scheduler steps never
    # fail half-way on a lock upgrade; readers wait instead of erroring.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
    # Tests run the scheduler and executor in threads: a file database, because
    # shared-cache in-memory SQLite fails lock waits instead of waiting.
    _db_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(_db_file.with_name(f"test_{_db_file.name}"))}

# Where started jobs run (README, "Running a cluster"): "inline", in threads of the scheduler
# process (the embedded default), or "workers", in `manage.py executor` processes fed
# through procrastinate's PostgreSQL queue.
QDASH_EXECUTORS = os.environ.get("QDASH_EXECUTORS", "inline")
if QDASH_EXECUTORS not in ("inline", "workers"):
    raise ImproperlyConfigured("QDASH_EXECUTORS must be inline or workers.")
if QDASH_EXECUTORS == "workers" and not POSTGRES:
    raise ImproperlyConfigured("QDASH_EXECUTORS=workers needs PostgreSQL (DATABASE_URL).")
if POSTGRES:  # the executor queue's tables live in PostgreSQL only
    INSTALLED_APPS.append("procrastinate.contrib.django")
QDASH_EXECUTION = {
    # An executor's heartbeat interval; after STALLED_SECONDS without one, the leader
    # hands its jobs to another executor, at most ATTEMPTS times in all per job.
    "HEARTBEAT_SECONDS": float(os.environ.get("QDASH_EXECUTOR_HEARTBEAT_SECONDS", "2")),
    "STALLED_SECONDS": float(os.environ.get("QDASH_EXECUTOR_STALLED_SECONDS", "10")),
    # Also: a job whose execution took its executor down this many times is not run again.
    "ATTEMPTS": env_int("QDASH_EXECUTOR_ATTEMPTS", 2),
    # Every execution runs in a child process under these caps (scheduler/caps.py): its
    # memory, and its wall-clock time (or the job's runtime limit, if shorter).
    "MEMORY_MB": env_int("QDASH_EXECUTOR_MEMORY_MB", 4096),
    "SECONDS": env_int("QDASH_EXECUTION_SECONDS", 600),
    # A new attempt waits this long after taking a job's lock: a previous holder that
    # lost its database connection stops its run within half of it.
    "GRACE_SECONDS": float(os.environ.get("QDASH_EXECUTOR_GRACE_SECONDS", "2")),
}
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "tasks"
# Every process reports itself for the cluster page this often (seconds).
QDASH_PROCESS_HEARTBEAT = float(os.environ.get("QDASH_PROCESS_HEARTBEAT", "2"))


def _secret_key_file() -> Path:
    """Beside the SQLite database; in the project folder for other databases."""
    if named := os.environ.get("QDASH_SECRET_KEY_FILE"):
        return Path(named)
    database = DATABASES["default"]
    name = str(database.get("NAME") or "")
    if database["ENGINE"] == "django.db.backends.sqlite3" and name and ":memory:" not in name:
        return Path(name).with_name(Path(name).name + ".secret-key")
    return BASE_DIR / "qdash.secret-key"


SECRET_KEY = secret_key(
    configured=os.environ.get("SECRET_KEY"), production=PRODUCTION, keep_at=_secret_key_file()
)

# Django's own Redis cache increments atomically (INCRBY), which rate limits need.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Each websocket joins groups through the pool: allow many more than redis-py's 100.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 1000}]},
        },
    }
    # Shared by every process: rate limits and login lock-outs count across them.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # One process (the embedded default): its own memory is the only cache there is.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

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

STATIC_URL = "/static/"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # plotly.js from the installed plotly package, not a CDN.
    ("vendor/plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Static files straight from the apps and packages: no collectstatic step needed. A
# `staticfiles/` folder is served too when there is one (WhiteNoise warns of a missing one).
STATIC_ROOT = BASE_DIR / "staticfiles" if (BASE_DIR / "staticfiles").is_dir() else None
WHITENOISE_USE_FINDERS = True
# Messages (a new API key among them) stay on the server, not in a signed cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Scheduling settings, in seconds (see docs/rules.md); `simulate` shares their defaults.
from scheduler.rule_settings import DEFAULTS as RULES  # noqa: E402 - the one home of the defaults

QDASH = {
    "INTERACTIVE_TTL": env_int("QDASH_INTERACTIVE_TTL", RULES["interactive_ttl"]),
    "BATCH_INTERACTIVE_TTL": env_int("QDASH_BATCH_INTERACTIVE_TTL", RULES["batch_interactive_ttl"]),
    "SYSTEM_MAX_TTL": env_int("QDASH_SYSTEM_MAX_TTL", RULES["system_max_ttl"]),
    "OPEN_TIMEOUT": env_int("QDASH_OPEN_TIMEOUT", RULES["open_timeout"]),
    "USAGE_WINDOW": env_int("QDASH_USAGE_WINDOW", RULES["usage_window"]),
    "BACKEND_MAX_RUNTIME": env_int("QDASH_BACKEND_MAX_RUNTIME", RULES["backend_max_runtime"]),
}

# History (docs/history.md): the leader prunes finished jobs older than this many days
# in its idle time (0: never), archiving them to this directory when one is set.
QDASH_HISTORY = {
    "RETENTION_DAYS": env_int("QDASH_RETENTION_DAYS", 0),
    "ARCHIVE_DIR": os.environ.get("QDASH_ARCHIVE_DIR", ""),
}

# Input limits (README, "Limits"): larger input is refused before any work.
QDASH_LIMITS = {
    "QUBITS": env_int("QDASH_MAX_QUBITS", 1_000),
    "CLBITS": env_int("QDASH_MAX_CLBITS", 10_000),
    "SHOTS": env_int("QDASH_MAX_SHOTS", 100_000),
    "PUBS": env_int("QDASH_MAX_PUBS", 100),
    "PARAMETER_SETS": env_int("QDASH_MAX_PARAMETER_SETS", 10_000),
    "OBSERVABLES": env_int("QDASH_MAX_OBSERVABLES", 1_000),
    "OBSERVABLE_TERMS": env_int("QDASH_MAX_OBSERVABLE_TERMS", 50_000),
    "OBSERVABLE_SIZE": env_int("QDASH_MAX_OBSERVABLE_SIZE", 5_000_000),
    "GATES": env_int("QDASH_MAX_GATES", 100_000),
    "DEPTH": env_int("QDASH_MAX_DEPTH", 100_000),
    "QASM_CHARS": env_int("QDASH_MAX_QASM_CHARS", 100_000),
    "EXECUTIONS": env_int("QDASH_MAX_EXECUTIONS", 5_000_000),
}
# Circuit input is decoded in worker processes under these caps (scheduler/sandbox.py).
QDASH_DECODE = {
    "WORKERS": env_int("QDASH_DECODE_WORKERS", 2),
    "MEMORY_MB": env_int("QDASH_DECODE_MEMORY_MB", 512),
    "SECONDS": env_int("QDASH_DECODE_SECONDS", 10),
    # Each user has one decode in flight per web process; this many may wait or run.
    "QUEUE_PER_USER": env_int("QDASH_DECODE_QUEUE_PER_USER", 4),
    # Answers of the input checks remembered per web process (0: none), weighed as
    # one per answer plus one per circuit it describes.
    "MEMO_WEIGHT": env_int("QDASH_DECODE_MEMO_WEIGHT", 20_000),
}
# What researchers see of other instances on shared pages: "private" (not their ids
# or paths) or "open" (selectors/access.py, visible_instances).
QDASH_VISIBILITY = os.environ.get("QDASH_VISIBILITY", "private")
if QDASH_VISIBILITY not in ("private", "open"):
    raise ImproperlyConfigured("QDASH_VISIBILITY must be private or open.")
# /metrics: with a token, scrapers send `Authorization: Bearer <token>`; without one,
# only local addresses may read it.
QDASH_METRICS_TOKEN = os.environ.get("QDASH_METRICS_TOKEN", "")
# The leader's plan replays only the backends a change may move (scheduler/plans.py);
# off: a full replay at most once a second, as before (the engine bench's baseline).
QDASH_PLAN_INCREMENTAL = env_bool("QDASH_PLAN_INCREMENTAL", True)
# Seconds a cancel or close waits for the leader to apply it, so the answer shows it.
QDASH_APPLY_WAIT = float(os.environ.get("QDASH_APPLY_WAIT", "2"))
# API requests a minute per API key, and failed authentications a minute per address.
QDASH_API_REQUESTS_PER_MINUTE = env_int("QDASH_API_REQUESTS_PER_MINUTE", 6_000)
QDASH_API_FAILURES_PER_MINUTE = env_int("QDASH_API_FAILURES_PER_MINUTE", 20)
# Seconds a web process remembers a bearer token that passed (scheduler/api/callers.py):
# a key revoked in another process stops working within this; in the same one, at once.
QDASH_AUTH_CACHE_SECONDS = float(os.environ.get("QDASH_AUTH_CACHE_SECONDS", "1"))
QDASH_MAX_PAYLOAD_BYTES = env_int("QDASH_MAX_PAYLOAD_BYTES", 10 * 1024 * 1024)
QDASH_MAX_QUEUED_PER_USER = env_int("QDASH_MAX_QUEUED_PER_USER", 100)
QDASH_MAX_OPEN_SESSIONS_PER_USER = env_int("QDASH_MAX_OPEN_SESSIONS_PER_USER", 20)
QDASH_MAX_TAGS = env_int("QDASH_MAX_TAGS", 50)
QDASH_MAX_TAG_CHARS = env_int("QDASH_MAX_TAG_CHARS", 200)
QDASH_JOB_DEDUPE_SECONDS = env_int("QDASH_JOB_DEDUPE_SECONDS", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_guid.log_filters.CorrelationId"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "qiskit": {"level": "WARNING"},
        "stevedore": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django_guid": {"level": "WARNING"},
        "procrastinate": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},  # the console: the URL, logins, warnings, a summary
    },
}
