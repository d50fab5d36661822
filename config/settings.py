"""Troubadour settings: everything comes from the environment, with safe defaults.

Without any environment the project runs on embedded defaults (SQLite, a filesystem
Celery broker, local-memory cache) so `make run` needs no server. Production sets
DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, SECRET_KEY and ALLOWED_HOSTS.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab  # noqa: F401  (used by config.beat)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TROUBADOUR_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or env_bool("TROUBADOUR_EMBEDDED", False) or "pytest" in sys.modules:
        SECRET_KEY = "insecure-development-key-change-me"
    else:
        from django.core.exceptions import ImproperlyConfigured

        # A production process must never start with a guessable signing key.
        if os.environ.get("DJANGO_ALLOW_INSECURE_KEY") != "1":
            raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=true for development).")
        SECRET_KEY = "insecure-development-key-change-me"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "unfold",  # the staff console's theme; must precede django.contrib.admin
    "modeltranslation",  # must precede django.contrib.admin
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files, no CDN
    "django_celery_beat",
    "anymail",
    "channels",
    "accounts",
    "narrations",
    "invitations",
    "notifications",
    "providers",
    "people",
    "news",
    "roleplay",
    "batchjobs",
]

MIDDLEWARE = [
    "common.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "common.middleware.RejectNulQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "common.middleware.PageSecurityHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- database -------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # DB_POOL_SIZE > 0 (the web tier sets it): connections come from a psycopg pool shared by the
    # process's threads instead of one new PostgreSQL connection per request or socket frame.
    if int(os.environ.get("DB_POOL_SIZE", "0") or 0) > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2, "max_size": int(os.environ["DB_POOL_SIZE"]), "timeout": 10, "max_idle": 300,
        }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "troubadour.sqlite3"),
            # Web, worker, beat and consumer share the file: wait for locks instead of failing.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if "pytest" in sys.modules:
    # Hashing at full strength costs ~1 s a user; tests create many users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# none | optional (a new user is signed in at once and sent a confirmation link) | mandatory.
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
# Attempts an hour: sign-ups per client address; password-reset requests per client address and
# per email address (people.limits). Over the limit the page answers 429 and says when to retry.
SIGNUP_LIMIT_PER_IP = int(os.environ.get("SIGNUP_LIMIT_PER_IP", "10"))
PASSWORD_RESET_LIMIT_PER_IP = int(os.environ.get("PASSWORD_RESET_LIMIT_PER_IP", "20"))
PASSWORD_RESET_LIMIT_PER_EMAIL = int(os.environ.get("PASSWORD_RESET_LIMIT_PER_EMAIL", "5"))

# --- i18n ------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_FALLBACK_LANGUAGES = ("en",)
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": os.environ.get("DEFAULT_FILE_STORAGE", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- cache / redis -----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "troubadour_cache"}
    }

# --- realtime (ASGI web tier: WebSocket, SSE, presence) ------------------------------------
# Every web process shares one Redis channel layer; the embedded run is one process.
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  # The layer blocks on BZPOPMIN for 5 s: the socket must wait longer than that.
                                  # A process's sockets share its pool: room for a burst of joins and sends.
                                  "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30,
                                                        "max_connections": 256}],
                                             "prefix": "troubadour:asgi",
                                             # A process's sockets share one channel: room for a burst of
                                             # frames to all of them (a full one drops frames: counted and
                                             # logged by notifications.realtime.layer_health).
                                             "capacity": int(os.environ.get("CHANNEL_LAYER_CAPACITY", "5000"))}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
INAPP_EXCHANGE = os.environ.get("INAPP_EXCHANGE", "notification.inapp.deliver")
INAPP_QUEUE = os.environ.get("INAPP_QUEUE", "notification.inapp.deliver.web")
# Threads for the event loop's database calls (0: Channels' one thread-sensitive thread).
REALTIME_DB_THREADS = int(os.environ.get("REALTIME_DB_THREADS", "4") or 0)
REALTIME_BUS_CONSUMER = env_bool("REALTIME_BUS_CONSUMER", True)  # web processes consume the in-app exchange
# Event types, templates, channel configuration and webhooks read once per process, invalidated
# everywhere through a Redis generation (notifications.engine.config_memo); off without Redis.
NOTIFICATION_CONFIG_MEMO = env_bool("NOTIFICATION_CONFIG_MEMO", True)
# In-app items of small events go to the bus from the committing thread, before the answer (the
# frame is on its way when the caller hears back); false: from a publisher thread per process that
# batches them (engine.inapp_publisher) — a shorter answer, but on a saturated process the thread
# gets little of the interpreter and frames lag seconds behind the answers.
INAPP_PUBLISH_INLINE = env_bool("INAPP_PUBLISH_INLINE", True)
WS_MAX_CONNECTIONS_PER_USER = int(os.environ.get("WS_MAX_CONNECTIONS_PER_USER", "10"))
# Frames a client may send per connection (acks, presence): a token bucket; presence changes apart.
WS_CLIENT_FRAMES_PER_SECOND = float(os.environ.get("WS_CLIENT_FRAMES_PER_SECOND", "20"))
WS_CLIENT_FRAME_BURST = int(os.environ.get("WS_CLIENT_FRAME_BURST", "100"))
WS_PRESENCE_PER_MINUTE = int(os.environ.get("WS_PRESENCE_PER_MINUTE", "30"))
PRESENCE_TTL_SECONDS = int(os.environ.get("PRESENCE_TTL_SECONDS", "90"))
PRESENCE_GRACE_SECONDS = float(os.environ.get("PRESENCE_GRACE_SECONDS", "5"))

# --- celery --------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
EMBEDDED_BROKER_DIR = VAR_DIR / "broker"
if not CELERY_BROKER_URL:
    for sub in ("out", "processed", "control"):
        (EMBEDDED_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(EMBEDDED_BROKER_DIR / "out"),
        "data_folder_out": str(EMBEDDED_BROKER_DIR / "out"),
        "processed_folder": str(EMBEDDED_BROKER_DIR / "processed"),
        "control_folder": str(EMBEDDED_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Publisher confirms: a publish returns only once RabbitMQ has the message.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "max_retries": 5}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every queue is declared, so a plain `celery -A config worker` consumes them all (-Q narrows).
from common.queues import TASK_QUEUES, TASK_ROUTES  # noqa: E402

CELERY_TASK_QUEUES = TASK_QUEUES
CELERY_TASK_ROUTES = TASK_ROUTES
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Event bus (AMQP): the exchange external services publish to.
EVENT_BUS_URL = os.environ.get("EVENT_BUS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL != "filesystem://" else "")
EVENT_EXCHANGE = os.environ.get("EVENT_EXCHANGE", "notification.events")
EVENT_QUEUE = os.environ.get("EVENT_QUEUE", "notification.events.intake")
EVENT_DLQ = os.environ.get("EVENT_DLQ", "notification.dlq")
# Command bus (same connection): admin operations from other systems, `manage.py consume_commands`.
COMMAND_EXCHANGE = os.environ.get("COMMAND_EXCHANGE", "notification.commands")
COMMAND_QUEUE = os.environ.get("COMMAND_QUEUE", "notification.commands.intake")
COMMAND_DLQ = os.environ.get("COMMAND_DLQ", EVENT_DLQ)

# --- email -----------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend" if not os.environ.get("EMAIL_HOST") else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "outbox"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Troubadour <no-reply@troubadour.local>")
ANYMAIL = {
    "SENDGRID_API_KEY": os.environ.get("SENDGRID_API_KEY", ""),
    "MAILGUN_API_KEY": os.environ.get("MAILGUN_API_KEY", ""),
    "POSTMARK_SERVER_TOKEN": os.environ.get("POSTMARK_SERVER_TOKEN", ""),
    "WEBHOOK_SECRET": os.environ.get("ANYMAIL_WEBHOOK_SECRET", ""),
}

# --- notification providers ----------------------------------------------------------
# Requests to tenant-chosen URLs (webhooks, Web Push, provider endpoints) may reach loopback
# addresses only when this is set: tests and development receivers. Never in production.
OUTBOUND_ALLOW_LOOPBACK = env_bool("OUTBOUND_ALLOW_LOOPBACK", False)
# Web Push (VAPID, RFC 8292): base64url keys, e.g. from `vapid --gen` (py-vapid).
VAPID_PRIVATE_KEY = os.environ.get("VAPID_PRIVATE_KEY", "")
VAPID_PUBLIC_KEY = os.environ.get("VAPID_PUBLIC_KEY", "")
VAPID_SUBJECT = os.environ.get("VAPID_SUBJECT", "mailto:admin@troubadour.local")
# Webhook signature keys anymail checks besides WEBHOOK_SECRET (basic auth).
ANYMAIL.update({
    k: v for k, v in {
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": os.environ.get("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", ""),
        "MAILGUN_WEBHOOK_SIGNING_KEY": os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY", ""),
    }.items() if v
})
PROVIDER_CIRCUIT_FAILURE_THRESHOLD = int(os.environ.get("PROVIDER_CIRCUIT_FAILURE_THRESHOLD", "5"))
PROVIDER_CIRCUIT_COOLDOWN_SECONDS = int(os.environ.get("PROVIDER_CIRCUIT_COOLDOWN_SECONDS", "60"))
PROVIDER_CIRCUIT_WINDOW_SECONDS = int(os.environ.get("PROVIDER_CIRCUIT_WINDOW_SECONDS", "120"))
# Sends in flight at once per provider record in one worker process (a batch's messages go out
# concurrently from a thread pool; rendering and recording stay in the worker's own thread).
PROVIDER_MAX_IN_FLIGHT = int(os.environ.get("PROVIDER_MAX_IN_FLIGHT", "32"))
# How long a batch may wait inside the worker for per-second rate-limit slots (a record's
# config `rate_limit_per_second`) before handing the rest back without using an attempt.
PROVIDER_RATE_WAIT_SECONDS = float(os.environ.get("PROVIDER_RATE_WAIT_SECONDS", "5"))
# Operator alerts (notifications/engine/operator_alerts.py): a provider turning unhealthy, its
# circuit opening or refusing its credentials, and the dead-letter rate, as one system.outage
# notification per outage to the owners/admins of the provider's organization — for the
# platform's own providers and the dead-letter rate, of the organization with this slug.
OPERATOR_ALERTS_ORGANIZATION = os.environ.get("OPERATOR_ALERTS_ORGANIZATION", "")
OPERATOR_ALERT_DEDUP_SECONDS = int(os.environ.get("OPERATOR_ALERT_DEDUP_SECONDS", "3600"))
DEAD_LETTER_ALERT_PERCENT = float(os.environ.get("DEAD_LETTER_ALERT_PERCENT", "5"))
DEAD_LETTER_ALERT_MINIMUM = int(os.environ.get("DEAD_LETTER_ALERT_MINIMUM", "20"))
DEAD_LETTER_ALERT_WINDOW_MINUTES = int(os.environ.get("DEAD_LETTER_ALERT_WINDOW_MINUTES", "15"))
# Fair sharing (notifications/engine/fairness.py): past this many deliveries enqueued within
# the window, an organization's batches go to the delivery_bulk queue.
DELIVERY_FAIR_BURST = int(os.environ.get("DELIVERY_FAIR_BURST", "1000"))
DELIVERY_FAIR_WINDOW_SECONDS = int(os.environ.get("DELIVERY_FAIR_WINDOW_SECONDS", "30"))

# --- narration -------------------------------------------------------------------
ELEVENLABS_API_KEY = os.environ.get("ELEVENLABS_API_KEY", "")
ELEVENLABS_BASE_URL = os.environ.get("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io")
ELEVENLABS_MODEL_ID = os.environ.get("ELEVENLABS_MODEL_ID", "eleven_multilingual_v2")
ELEVENLABS_DEFAULT_VOICE_ID = os.environ.get("ELEVENLABS_DEFAULT_VOICE_ID", "21m00Tcm4TlvDq8ikWAM")
NARRATION_ENGINE = os.environ.get("NARRATION_ENGINE", "")  # "", "local" or "elevenlabs"

# --- audiences -------------------------------------------------------------------
# An audience event with more members than FANOUT_INLINE_MAX runs as a batch job, in chunks of
# FANOUT_CHUNK_SIZE members (one transaction each, resumable after a crash).
FANOUT_INLINE_MAX = int(os.environ.get("FANOUT_INLINE_MAX", "1000"))
FANOUT_CHUNK_SIZE = int(os.environ.get("FANOUT_CHUNK_SIZE", "5000"))

# --- invitations -----------------------------------------------------------------
INVITATION_TTL_DAYS = int(os.environ.get("INVITATION_TTL_DAYS", "14"))
INVITATION_MAX_BATCH = 500

# Environment variables a provider record may name in `secret_env_refs` (comma separated), e.g.
# "ACME_TWILIO_TOKEN,SENDGRID_API_KEY". Empty: none. The platform's own secrets (SECRET_KEY,
# database/broker/cache URLs, FIELD_ENCRYPTION_KEYS…) are refused even if listed.
PROVIDER_SECRET_ENV_ALLOWLIST = env_list("PROVIDER_SECRET_ENV_ALLOWLIST", "")

# --- secrets at rest -----------------------------------------------------------------
# Fernet key(s), comma separated, newest first; provider credentials are encrypted with it.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", "")

# --- clients behind proxies ------------------------------------------------------------
# How many reverse proxies in front of the application append to X-Forwarded-For. 0: the header
# is ignored and REMOTE_ADDR is the client (rate limits, the invitation-link guard, throttles).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# --- intake limits ----------------------------------------------------------------------
# Events per organization (REST and AMQP; notifications.engine.event_limits), overridable per
# organization. Template rendering bounds (notifications.engine.rendering).
EVENTS_RATE_PER_MINUTE = int(os.environ.get("EVENTS_RATE_PER_MINUTE", "600"))
EVENTS_BURST = int(os.environ.get("EVENTS_BURST", "600"))
TEMPLATE_MAX_LOOP_ITERATIONS = int(os.environ.get("TEMPLATE_MAX_LOOP_ITERATIONS", "10000"))
TEMPLATE_MAX_OUTPUT_CHARS = int(os.environ.get("TEMPLATE_MAX_OUTPUT_CHARS", "500000"))
# Email attachments of an event's channel_options: each, and all together (README "Channel options").
EMAIL_ATTACHMENT_MAX_BYTES = int(os.environ.get("EMAIL_ATTACHMENT_MAX_BYTES", str(5 * 1024 * 1024)))
EMAIL_ATTACHMENTS_TOTAL_MAX_BYTES = int(os.environ.get("EMAIL_ATTACHMENTS_TOTAL_MAX_BYTES", str(10 * 1024 * 1024)))
# Inline (base64) attachments are stored with every recipient's notification: their size times the
# number of recipients of one event, at most (beyond it, attachments go by URL).
EMAIL_INLINE_ATTACHMENTS_EVENT_MAX_BYTES = int(os.environ.get("EMAIL_INLINE_ATTACHMENTS_EVENT_MAX_BYTES", str(50 * 1024 * 1024)))

# --- REST framework ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.JSONParser",  # refuses NUL characters PostgreSQL cannot store
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {"invitation_token": os.environ.get("INVITATION_TOKEN_THROTTLE", "30/min")},
    # Throttles key on the address the trusted proxies vouch for (common.net.client_ip), never on
    # a client-written X-Forwarded-For (DRF trusts the whole header when this is None).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Troubadour API",
    "DESCRIPTION": (
        "Story invitations and the notification platform.\n\n"
        "**Authentication.** Services use an organization API key (`Authorization: Api-Key <key>`); "
        "people use a personal token (`Authorization: Token <token>`) or their browser session. "
        "In *Authorize*, type the whole header value, scheme included."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "notifications.realtime.schema.document_realtime",  # the SSE stream and the WebSocket
        "common.schema.document_error_responses",
        "common.schema.document_operations",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "displayOperationId": False,
                            "tryItOutEnabled": False, "filter": True, "validatorUrl": None},
    # One name per shared choice set (several serializers use the same enums).
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "notifications.enums.Channel",
        "CriticalityEnum": "notifications.enums.Criticality",
        "QuietHoursActionEnum": "notifications.enums.QuietHoursAction",
        "AuditActionEnum": "notifications.enums.AuditAction",
    },
}

# --- operations -----------------------------------------------------------------------
# /metrics: staff, or `Authorization: Bearer <METRICS_TOKEN>` for a Prometheus scraper.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Shared by every process of a host (web, workers, consumer) so /metrics adds them up; emptied at start.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# Housekeeping (beat, daily): how long audit rows and the rendered copy of sent messages are kept.
AUDIT_LOG_RETENTION_DAYS = int(os.environ.get("AUDIT_LOG_RETENTION_DAYS", "365"))
RENDERED_CONTENT_RETENTION_DAYS = int(os.environ.get("RENDERED_CONTENT_RETENTION_DAYS", "30"))

# --- staff console (django-unfold) -------------------------------------------------------
from django.templatetags.static import static  # noqa: E402
from django.urls import reverse_lazy  # noqa: E402


def _console_item(title: str, icon: str, model: str) -> dict:
    app_label, model_name = model.split(".")
    return {
        "title": title, "icon": icon, "link": reverse_lazy(f"admin:{app_label}_{model_name}_changelist"),
        "permission": lambda request: request.user.has_perm(f"{app_label}.view_{model_name}"),
    }


def _console_group(title: str, *items: tuple[str, str, str]) -> dict:
    return {"title": title, "separator": True, "collapsible": True, "items": [_console_item(*item) for item in items]}


# The sidebar follows what an operator does; every registered model stays reachable under
# "All applications" and the search box.
UNFOLD = {
    "SITE_TITLE": "Troubadour console",
    "SITE_HEADER": "Troubadour",
    "SITE_SYMBOL": "campaign",
    "DASHBOARD_CALLBACK": "notifications.admin.dashboard.dashboard_callback",
    "STYLES": [lambda request: static("admin_console/console.css")],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": [
            _console_group(
                "Delivery",
                ("Notifications", "notifications", "notifications.notification"),
                ("Deliveries", "send", "notifications.notificationdelivery"),
                ("Dead letters", "report", "notifications.deadletter"),
                ("Digest batches", "inbox", "notifications.notificationbatch"),
            ),
            _console_group(
                "Content",
                ("Event types", "category", "notifications.eventtype"),
                ("Templates", "edit_note", "notifications.notificationtemplate"),
                ("Stories", "auto_stories", "narrations.story"),
                ("Narrations", "record_voice_over", "narrations.storynarration"),
                ("Invitations", "mail", "invitations.storyinvitation"),
            ),
            _console_group(
                "Routing",
                ("Channel configurations", "tune", "notifications.channelconfiguration"),
                ("Preferences", "toggle_on", "notifications.notificationpreference"),
                ("Quiet hours", "bedtime", "notifications.quiethours"),
                ("Escalation chains", "escalator_warning", "notifications.escalationchain"),
                ("On-call rotations", "support_agent", "accounts.oncallrotation"),
                ("Webhooks", "webhook", "notifications.webhook"),
            ),
            _console_group(
                "Providers",
                ("Providers", "hub", "providers.notificationprovider"),
                ("Health checks", "monitor_heart", "providers.providerhealthmetric"),
                ("Daily costs", "payments", "providers.providercostdaily"),
                ("Suppressed addresses", "block", "providers.suppressedaddress"),
                ("Outbox", "outbox", "providers.provideroutbox"),
            ),
            _console_group(
                "People",
                ("Users", "person", "accounts.user"),
                ("Organizations", "corporate_fare", "accounts.organization"),
                ("Teams", "groups", "accounts.team"),
                ("API keys", "key", "accounts.apikey"),
                ("Presence", "radio_button_checked", "notifications.userpresence"),
                ("Push subscriptions", "notifications_active", "providers.pushsubscription"),
            ),
            _console_group(
                "Audit",
                ("Audit log", "history", "notifications.notificationauditlog"),
                ("Invitation history", "manage_history", "invitations.invitationhistory"),
                ("Idempotency records", "fingerprint", "notifications.idempotencyrecord"),
                ("Beat schedule", "schedule", "django_celery_beat.periodictask"),
            ),
        ],
    },
}

# --- security -----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and SITE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
X_FRAME_OPTIONS = "DENY"
# Every HTML page: scripts only from our own origin (or an inline <script nonce="{{ CSP_NONCE }}">),
# nothing from other hosts, no plugins, no framing, forms post only to us. Everything the
# product serves comes from its own static files (the API docs included: Swagger UI is served
# locally, never from a CDN), so no remote host is ever allowed here. Styles may be inline
# (style attributes in our pages and the admin); scripts never, unless nonce'd.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],  # fetch, Server-Sent Events and same-origin WebSockets
        "media-src": [SELF, *env_list("CSP_MEDIA_SRC")],  # narration audio; a storage bucket's origin if MEDIA lives there
        "worker-src": [SELF, "blob:"],  # Redoc builds its search index in a worker made from a blob
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Sent on every page besides the CSP (common.middleware.PageSecurityHeadersMiddleware); the
# invitation landing page, whose URL is a credential, tightens Referrer-Policy to no-referrer.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# --- logging ------------------------------------------------------------------------
# json: one object per line with request_id/correlation_id (production); plain: for a terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG or env_bool("TROUBADOUR_EMBEDDED", False) else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "ids": {"()": "common.logging.ContextIdsFilter"},
        "redact": {"()": "common.logging.RedactSecretsFilter"},
        "channel_full": {"()": "notifications.realtime.layer_health.ChannelFullFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
        "json": {"()": "common.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain",
                             "filters": ["ids", "redact"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Its "over capacity" records are raised to WARNING and counted (notifications.realtime.layer_health).
        "channels_redis.core": {"level": "INFO", "filters": ["channel_full"]},
        # Request logs go through the redacting handler too (invitation tokens are in paths).
        **{name: {"handlers": ["console"], "level": "INFO", "propagate": False}
           for name in ("django.server", "gunicorn.access", "uvicorn.access")},
    },
}
