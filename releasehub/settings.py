"""ReleaseHub settings.

Every setting comes from an environment variable (12-factor). The defaults give the
embedded mode used by `make run` and `make test`: SQLite and a file-system broker under
``var/``, so nothing but Python is needed. README.md lists every variable.
"""

import os
import secrets
from pathlib import Path

import environ
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("RELEASEHUB_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret(name: str, make) -> str:
    """A secret generated on first start and kept in VAR_DIR (mode 0600), used when no variable sets it.

    Processes sharing VAR_DIR (web, worker, beat; or compose containers sharing a volume)
    read the same value.
    """
    path = VAR_DIR / name
    if not path.exists():
        # Written whole to a temporary file, then linked into place: a concurrent first start either
        # wins the link or reads the winner's complete file, never an empty one.
        temporary = VAR_DIR / f".{name}.{os.getpid()}"
        temporary.write_text(make())
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret("secret_key", lambda: secrets.token_urlsafe(50))
# Fernet key that encrypts secret variables at rest.
RELEASEHUB_ENCRYPTION_KEY = env.str("RELEASEHUB_ENCRYPTION_KEY", default="") or _local_secret(
    "encryption_key", lambda: Fernet.generate_key().decode()
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a TLS-terminating proxy: https://docs.djangoproject.com/en/5.2/ref/settings/#secure-proxy-ssl-header
if env.bool("BEHIND_HTTPS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Number of proxies in front of the app whose X-Forwarded-For entries are trusted for the client IP.
RELEASEHUB_TRUSTED_PROXIES = env.int("RELEASEHUB_TRUSTED_PROXIES", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "django_htmx",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.environments",
    "apps.catalog",
    "apps.releases",
    "apps.deployments",
    "apps.inventory",
    "apps.approvals",
    "apps.scheduling",
    "apps.policies",
    "apps.notifications",
    "apps.configcode",
    "apps.gitops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "apps.core.middleware.UserTimezoneMiddleware",
]

ROOT_URLCONF = "releasehub.urls"
WSGI_APPLICATION = "releasehub.wsgi.application"
ASGI_APPLICATION = "releasehub.asgi.application"

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
                "apps.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'releasehub.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside one writer; IMMEDIATE takes the write lock when a
    # transaction starts, so web and worker queue for it (up to `timeout` seconds)
    # instead of failing with "database is locked" when a read lock is upgraded.
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so a Celery worker thread and the live server share the test database;
    # one per process, so test runs side by side never share one.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    _db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://releasehub")}

# --- Authentication -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
# guardian: no anonymous user row; anonymous requests never see objects.
ANONYMOUS_USER_NAME = None
# History is a record: the admin shows it and never reverts to it (apps.core.admin.HistoryAdmin).
SIMPLE_HISTORY_REVERT_DISABLED = True
GUARDIAN_MONKEY_PATCH_USER = False

# --- Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
WHITENOISE_USE_FINDERS = DEBUG

# Requests larger than this are refused (413 in the API).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

# --- Email ---------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ReleaseHub <releasehub@localhost>")
# Where people reach the site: links in notifications (emails, webhooks, chat) are made absolute with it.
RELEASEHUB_BASE_URL = env.str("RELEASEHUB_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Notification deliveries that fail are retried after this many seconds, doubled each time (10, 20, 40, 80).
NOTIFICATION_RETRY_BASE_SECONDS = env.float("NOTIFICATION_RETRY_BASE_SECONDS", default=10)

# --- REST API -------------------------------------------------------------------------------
API_TOKEN_RATE = env.str("API_TOKEN_RATE", default="1200/min")
API_USER_RATE = env.str("API_USER_RATE", default="600/min")
# Failed sign-ins (bad API tokens, wrong passwords) allowed per client IP and minute.
AUTH_FAILURES_PER_MINUTE = env.int("AUTH_FAILURES_PER_MINUTE", default=30)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.accounts.permissions.TokenScopePermission",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.throttling.ApiRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # `?format=` is ours (audit export), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ReleaseHub API",
    "DESCRIPTION": "Register build artifacts, release, approve and deploy. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "DeploymentStatusEnum": "apps.deployments.models.DeploymentStatus",
        "StepRunStatusEnum": "apps.deployments.models.StepRunStatus",
        "StrategyEnum": "apps.deployments.models.Strategy",
        "SlotEnum": "apps.environments.choices.Slot",
        "TierEnum": "apps.environments.choices.Tier",
        "TokenStatusEnum": ["active", "expired", "revoked"],
        "ChannelEnum": "apps.core.context.Channel",
        "NotificationChannelEnum": "apps.notifications.models.Channel",
        "NotificationEventEnum": "apps.notifications.events.EVENT_CHOICES",
        "DeliveryStatusEnum": "apps.notifications.models.DeliveryStatus",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker"
    for _sub in ("queue", "control", "processed"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "control_folder": str(_queue_dir / "control"),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Longer than any single unit of work; deployments schedule waits through the database.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "audit-verify-nightly": {
        "task": "audit.verify_chain",
        "schedule": env.float("AUDIT_VERIFY_INTERVAL", default=24 * 3600),
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
    "deployments-dispatch": {
        "task": "deployments.dispatch",
        "schedule": env.float("DEPLOYMENT_DISPATCH_INTERVAL", default=5),
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
    "approvals-expire": {
        "task": "approvals.expire",
        "schedule": 30,
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
    "scheduling-close-slots": {
        "task": "scheduling.close_slots",
        "schedule": 30,
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
    "notifications-resend-lost": {
        "task": "notifications.resend_lost",
        "schedule": 60,
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
    "inventory-check-drift": {
        "task": "inventory.check_drift",
        "schedule": env.float("DRIFT_CHECK_INTERVAL", default=300),
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
    "purge-idempotency-keys": {
        "task": "core.purge_idempotency_keys",
        "schedule": 3600,
        "options": {"headers": {"releasehub_channel": "scheduler"}},
    },
}

# Deployment engine (apps.deployments.engine.runner): a step runs at most its `timeout` parameter (or
# DEPLOYMENT_STEP_TIMEOUT); its lease lasts that long plus DEPLOYMENT_LEASE_MARGIN, after which another
# worker takes over; a unit whose worker is lost DEPLOYMENT_MAX_UNIT_ATTEMPTS times fails.
DEPLOYMENT_STEP_TIMEOUT = env.float("DEPLOYMENT_STEP_TIMEOUT", default=600)
DEPLOYMENT_LEASE_MARGIN = env.float("DEPLOYMENT_LEASE_MARGIN", default=60)
DEPLOYMENT_UNIT_TIME_LIMIT = env.float("DEPLOYMENT_UNIT_TIME_LIMIT", default=3600)
DEPLOYMENT_MAX_UNIT_ATTEMPTS = env.int("DEPLOYMENT_MAX_UNIT_ATTEMPTS", default=3)
DEPLOYMENT_LOG_LIMIT = env.int("DEPLOYMENT_LOG_LIMIT", default=256 * 1024)

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- ReleaseHub -------------------------------------------------------------------------------
# Scopes an API token may carry (API.md "Tokens").
API_TOKEN_SCOPES = {
    "read": "Read everything the user may view",
    "artifacts:write": "Register build artifacts",
    "releases:write": "Create releases",
    "deployments:write": "Request, approve and control deployments",
    "config:write": "Change environments, targets, variables, applications and lifecycles",
    "calendar:write": "Book deployment slots and decide on bookings",
    "inventory:write": "Report what targets run and check them for drift",
}
# Seconds a drift check waits for one target's health check URL.
DRIFT_CHECK_TIMEOUT = env.float("DRIFT_CHECK_TIMEOUT", default=5)
API_TOKEN_DEFAULT_LIFETIME_DAYS = env.int("API_TOKEN_DEFAULT_LIFETIME_DAYS", default=90)
# Seconds an Idempotency-Key and its response are kept for replay.
IDEMPOTENCY_KEY_TTL = env.int("IDEMPOTENCY_KEY_TTL", default=24 * 3600)
