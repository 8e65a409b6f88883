"""Django settings, read from the environment (see README "Configuration").

Two modes: `STYLELEDGER_ENV=development` (default: embedded SQLite database and
filesystem broker under var/, a generated secret key) and `production` (SECRET_KEY
required, secure cookies, HSTS). Operators grow from one machine to PostgreSQL +
Redis + N GPU workers by setting DATABASE_URL and CELERY_BROKER_URL: no code changes.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF

from editplatform import env
from editplatform.core.middleware import add_static_security_headers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.get_str("STYLELEDGER_VAR_DIR", str(BASE_DIR / "var"))).resolve()

ENVIRONMENT = env.get_choice("STYLELEDGER_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env.get_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise env.ConfigError("DEBUG", "must be off when STYLELEDGER_ENV=production")

if PRODUCTION:
    SECRET_KEY = env.get_str("SECRET_KEY", required=True)
    if len(SECRET_KEY) < 32:
        raise env.ConfigError("SECRET_KEY", "must be at least 32 characters in production")
else:
    SECRET_KEY = env.get_str("SECRET_KEY") or env.dev_secret_key(VAR_DIR)

ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # First, so its `createsuperuser` (refused: superusers come only from the audited
    # `create_operator_superuser`) overrides django.contrib.auth's. Its post_migrate
    # creates every app's permissions before granting them to the roles.
    "editplatform.accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework_api_key",
    "csp",
    "editplatform.core",
    "audit",
    "editplatform.portal",
    "editplatform.jobs",
    "editplatform.approvals",
    "editplatform.models_registry",
    "editplatform.compliance",
    "editplatform.monitoring",
    "editplatform.provenance",
    "editplatform.notifications",
    "editplatform.retention",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "editplatform.core.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "editplatform.accounts.two_factor.RequireTwoFactorMiddleware",
    "editplatform.accounts.actor.CurrentActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "editplatform.core.middleware.DomainErrorPageMiddleware",
]

ROOT_URLCONF = "editplatform.urls"
WSGI_APPLICATION = "editplatform.wsgi.application"

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
                "editplatform.accounts.context_processors.roles",
                "editplatform.notifications.context_processors.navigation_counts",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------
DATABASES = {"default": env.get_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Embedded mode: every transaction takes SQLite's write lock when it begins (BEGIN
    # IMMEDIATE). A deferred transaction that reads and then writes cannot wait for the
    # lock (under WAL it fails at once with "database is locked"); an immediate one
    # waits up to the busy timeout (env.py) and then proceeds, so concurrent submits
    # queue instead of answering 500.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -----------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # brute-force lockout, must come first
    # ModelBackend without per-user permissions, granting nothing to an account whose
    # password or 2FA someone else reset until a second admin confirms (docs/access.md).
    "editplatform.accounts.backends.GovernedModelBackend",
]
AXES_FAILURE_LIMIT = env.get_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.get_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
# Either too many failures for one account or from one address locks out: an attacker
# rotating addresses is stopped by the account count, one spraying accounts by the IP.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = "StyleLedger"

# --- account governance (issue 11; docs/access.md) ----------------------------------
# Reverse proxies whose X-Forwarded-For is believed (comma-separated CIDRs). Empty: the
# socket's peer is the client and X-Forwarded-For is ignored. Decides the address used
# by the lockout, API key allow-lists and sign-in events.
TRUSTED_PROXY_CIDRS = env.get_list("TRUSTED_PROXY_CIDRS", [])
for _cidr in TRUSTED_PROXY_CIDRS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise env.ConfigError("TRUSTED_PROXY_CIDRS", f"{_cidr!r} is not an IP network") from None
AXES_CLIENT_IP_CALLABLE = "editplatform.core.middleware.client_ip"
# Failed sign-ins write one `user.login_failed` per client address per window.
LOGIN_FAILURE_EVENT_WINDOW_SECONDS = env.get_int(
    "LOGIN_FAILURE_EVENT_WINDOW_SECONDS", 900, minimum=1
)

# --- four-eyes approval -----------------------------------------------------------
APPROVALS_REQUIRED = env.get_int("APPROVALS_REQUIRED", 1, minimum=1)

# --- email (notifications of decisions and results) -----------------------------------
# Development prints mail to the console; production names an SMTP server. PORTAL_BASE_URL
# makes the links in mail absolute (e.g. https://styleledger.example.org).
EMAIL_BACKEND = env.get_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.get_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env.get_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.get_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.get_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.get_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env.get_str("DEFAULT_FROM_EMAIL", "StyleLedger <styleledger@localhost>")
PORTAL_BASE_URL = env.get_str("PORTAL_BASE_URL", "")
APPROVAL_TTL_HOURS = env.get_int("APPROVAL_TTL_HOURS", 72, minimum=1)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# --- i18n / static --------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(Path(env.get_str("STORAGE_ROOT", str(VAR_DIR / "storage"))).resolve())
        },
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STORAGE_BACKEND = env.get_choice("STORAGE_BACKEND", "local", ("local", "s3"))
if STORAGE_BACKEND == "s3":
    # django-storages; credentials come from the usual AWS_* variables.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.get_str("AWS_STORAGE_BUCKET_NAME", required=True),
            "endpoint_url": env.get_str("AWS_S3_ENDPOINT_URL"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
# Static files (Swagger UI's HTML included) leave before the CSP and frame middleware
# run; whitenoise adds the same security headers itself.
WHITENOISE_ADD_HEADERS_FUNCTION = add_static_security_headers
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic in dev
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root

# --- model bundle ---------------------------------------------------------------
_DEMO_BUNDLE = BASE_DIR / "inversion" / "bundles" / "demo"
_BOOTSTRAP_BUNDLE = VAR_DIR / "bundles" / "bootstrap"
MODEL_BUNDLE = Path(
    env.get_str(
        "MODEL_BUNDLE",
        str(_DEMO_BUNDLE if (_DEMO_BUNDLE / "manifest.json").exists() else _BOOTSTRAP_BUNDLE),
    )
).resolve()

# The model registry's verified copies of registered bundles (docs/models.md).
MODEL_REGISTRY_DIR = Path(env.get_str("MODEL_REGISTRY_DIR", str(VAR_DIR / "models"))).resolve()
MODEL_UPLOAD_MAX_BYTES = env.get_int("MODEL_UPLOAD_MAX_BYTES", 2 * 1024 * 1024 * 1024, minimum=1024)
# Proof-of-concept runs from the portal (docs/models.md): the uploaded zip of photos.
POC_UPLOAD_MAX_BYTES = env.get_int("POC_UPLOAD_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
POC_MAX_UNCOMPRESSED_BYTES = env.get_int("POC_MAX_UNCOMPRESSED_BYTES", 1024**3, minimum=1024)
POC_MAX_IMAGES = env.get_int("POC_MAX_IMAGES", 200, minimum=1)

# --- edit jobs (editplatform.jobs; docs/jobs.md) ---------------------------------
UPLOAD_MAX_BYTES = env.get_int("UPLOAD_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
UPLOAD_MAX_PIXELS = env.get_int("UPLOAD_MAX_PIXELS", 40_000_000, minimum=64 * 64)
JOB_SOFT_TIME_LIMIT = env.get_int("JOB_SOFT_TIME_LIMIT", 600, minimum=5)
JOB_HARD_TIME_LIMIT = env.get_int(
    "JOB_HARD_TIME_LIMIT", JOB_SOFT_TIME_LIMIT + 60, minimum=JOB_SOFT_TIME_LIMIT + 1
)
JOB_MAX_ATTEMPTS = env.get_int("JOB_MAX_ATTEMPTS", 3, minimum=1)
JOB_LEASE_SECONDS = env.get_int("JOB_LEASE_SECONDS", 120, minimum=2)
JOB_REQUEUE_AFTER_SECONDS = env.get_int("JOB_REQUEUE_AFTER_SECONDS", 900, minimum=1)
JOB_SWEEP_INTERVAL_SECONDS = env.get_int("JOB_SWEEP_INTERVAL_SECONDS", 30, minimum=1)
JOB_APPROVAL_FOR_ALL = env.get_bool("JOB_APPROVAL_FOR_ALL", False)
# A photo the model cannot represent (the bundle's domain gate): refuse the job, hold its
# outputs for an approver (default), or release them flagged. See jobs.policy.
JOB_OUT_OF_DOMAIN = env.get_choice("JOB_OUT_OF_DOMAIN", "approve", ("refuse", "approve", "flag"))
# Quality mode `refine` (per job): optimisation steps after the encoder (inversion.refine);
# the cost grows linearly with it (docs/quality.md, "Quality mode: refine").
REFINE_MAX_STEPS = env.get_int("REFINE_MAX_STEPS", 25, minimum=1)
JOB_DEVICE = env.get_str("JOB_DEVICE", "auto")
JOB_TORCH_THREADS = env.get_int("JOB_TORCH_THREADS", 0, minimum=0)
# Micro-batching (editplatform.jobs.batching): a worker runs up to this many queued jobs of
# the same model version and quality mode as one forward pass; 1 = one job at a time.
JOB_BATCH_SIZE = env.get_int("JOB_BATCH_SIZE", 1, minimum=1)
# Warm the model up in each pool process at start (editplatform.jobs.warm_up): `auto` only
# in workers that consume the `gpu` queue, `always`, or `never`.
JOB_WARM_UP = env.get_choice("JOB_WARM_UP", "auto", ("auto", "always", "never"))
# Celery kills a pool process that replaces a dead one unless it is up within this many
# seconds; loading the bundle and the warm-up run before it reports up (Celery's default,
# 4 s, is shorter than a real bundle's load on a busy host).
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.get_int("WORKER_PROC_ALIVE_TIMEOUT", 300, minimum=4)

# --- artifact encryption and retention (docs/retention.md) ----------------------------
# Every stored artifact is sealed under its own data key, wrapped by this key-encryption
# key, which never lives in the database. A KMS: name a class with wrap/unwrap/kek_id.
ARTIFACT_KEY_WRAPPER = env.get_str(
    "ARTIFACT_KEY_WRAPPER", "editplatform.core.crypto.FileKeyWrapper"
)
ARTIFACT_KEK_FILE = env.get_str("ARTIFACT_KEK_FILE") or (
    None if PRODUCTION else str(VAR_DIR / "artifact_kek")
)

# Days each artifact kind is kept after its job ended, before the periodic retention run
# shreds it (editplatform.retention; the admin's retention policies override a kind, or a
# kind for a purpose). RETENTION_DAYS="original=30,latent=90": named kinds replace these.
RETENTION_DAYS = {
    "original": 30,
    "aligned": 30,
    "latent": 90,
    "transform": 90,
    "reconstruction": 365,
    "edited": 365,
    "result": 365,
    "marked": 365,
}
for _item in env.get_list("RETENTION_DAYS", []):
    _kind, _, _days = _item.partition("=")
    if _kind.strip() not in RETENTION_DAYS or not _days.strip().isdigit():
        raise env.ConfigError("RETENTION_DAYS", f"{_item!r} is not <kind>=<days> for a known kind")
    RETENTION_DAYS[_kind.strip()] = int(_days)
RETENTION_INTERVAL_SECONDS = env.get_int("RETENTION_INTERVAL_SECONDS", 3600, minimum=1)
# Days a "was this made here?" check stays confirmable from a copy of its image (its
# per-check salt, editplatform/provenance/check_keys.py); the retention run shreds older.
PROVENANCE_CHECK_KEY_DAYS = env.get_int("PROVENANCE_CHECK_KEY_DAYS", 30, minimum=1)

# --- audit log (docs/audit.md) ---------------------------------------------------
AUDIT_LOG_ORIGIN = env.get_str("AUDIT_LOG_ORIGIN", "styleledger.local/audit")
AUDIT_SIGNING_KEY_FILE = env.get_str("AUDIT_SIGNING_KEY_FILE")
AUDIT_SIGNING_KEY = env.get_str("AUDIT_SIGNING_KEY")
AUDIT_CHECKPOINT_DIR = Path(
    env.get_str("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "audit-checkpoints"))
).resolve()
AUDIT_CHECKPOINT_EVERY = env.get_int("AUDIT_CHECKPOINT_EVERY", 1000, minimum=1)
AUDIT_CHECKPOINT_SECONDS = env.get_int("AUDIT_CHECKPOINT_SECONDS", 60, minimum=1)
# Refuse appends on a log shorter than its exported checkpoints (a restore):
# docs/operations-restore.md
AUDIT_ROLLBACK_GUARD = env.get_bool("AUDIT_ROLLBACK_GUARD", True)

# --- Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = env.get_broker_url("CELERY_BROKER_URL", "filesystem://")
EMBEDDED_BROKER = CELERY_BROKER_URL.startswith("filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if EMBEDDED_BROKER:
    # kombu's filesystem transport: one folder of message files, no server needed.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    _default_results = f"file://{VAR_DIR / 'celery-results'}"
    # kombu and Celery's file backend expect their folders to exist.
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.get_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
    }
    _default_results = CELERY_BROKER_URL
CELERY_RESULT_BACKEND = env.get_str("CELERY_RESULT_BACKEND", _default_results)
CELERY_RESULT_EXPIRES = 24 * 3600

# --- logging --------------------------------------------------------------------
LOG_LEVEL = env.get_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "editplatform.core.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # django-axes logs every successful sign-in at INFO; the audit log already records them.
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- REST framework -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API keys first: its `Api-Key` challenge makes unauthenticated calls 401.
        "editplatform.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "editplatform.accounts.permissions.HasScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "editplatform.core.api.AutoSchema",
    "EXCEPTION_HANDLER": "editplatform.core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "StyleLedger API",
    "DESCRIPTION": (
        "Governed image editing: submit attribute edits of photos, poll jobs, fetch results.\n\n"
        "**Authentication**: every operation needs an API key, sent as the header "
        "`Authorization: Api-Key <key>` (the word `Api-Key`, a space, then the key). With a client "
        "generated by openapi-python-client: `AuthenticatedClient(base_url=..., token=key, "
        'prefix="Api-Key")` (its default prefix is `Bearer`, which this API refuses).\n\n'
        "**Submitting**: POST /api/v1/jobs takes either a JSON object (`image_base64`, "
        "`edits` as an object) or a multipart form (`image` file, `edits` as JSON text). "
        "Edit names and ranges: "
        "GET /api/v1/edits.\n\n"
        "**Errors** are JSON `{detail, code, field}`; `field` names the input to blame."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs hold no data: anyone may read them, without credentials
    # (and a stale key or session does not lock an integrator out of the docs).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "editplatform.jobs.api.schema.catalog_examples",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- security -------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the portal's small JS reads it for fetch() POSTs
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline scripts or styles anywhere: every script is a file under /static/.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.get_bool("SECURE_HSTS_PRELOAD", False)
    if env.get_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- deployment & monitoring (docker/compose.yml, docs/operations.md) -------------
# Prometheus metrics at /metrics: a bearer token (METRICS_TOKEN) or, without one, only
# from loopback. /readyz also asks the workers which queues they consume when
# READYZ_CONSUMER_QUEUES names some (compose: gpu,default).
METRICS_TOKEN = env.get_str("METRICS_TOKEN", "")
READYZ_CONSUMER_QUEUES = env.get_list("READYZ_CONSUMER_QUEUES", [])
READYZ_CONSUMER_TIMEOUT = env.get_int("READYZ_CONSUMER_TIMEOUT_MS", 1000, minimum=100) / 1000
# The app's database role (docs/audit.md): `manage.py deploy_init` creates it.
APP_DATABASE_ROLE = env.get_str("APP_DATABASE_ROLE", "styleledger_app")
APP_DATABASE_PASSWORD = env.get_str("APP_DATABASE_PASSWORD", "")
FIRST_ADMIN_USERNAME = env.get_str("FIRST_ADMIN_USERNAME", "admin")
TLS_CERT_DIR = env.get_str("TLS_CERT_DIR", "")
TLS_SERVER_NAME = env.get_str("TLS_SERVER_NAME", ALLOWED_HOSTS[0] if ALLOWED_HOSTS else "localhost")
if PRODUCTION:
    # Probes and scrapers talk to the web process directly over plain HTTP inside the
    # deployment's network; everything else is redirected to the TLS proxy.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    # The placeholders of docker/env.example must never reach a running deployment.
    _PLACEHOLDER = "change-me"
    for _name, _value in (
        ("SECRET_KEY", SECRET_KEY),
        ("DATABASE_URL", DATABASES["default"].get("PASSWORD") or ""),
        ("APP_DATABASE_PASSWORD", APP_DATABASE_PASSWORD),
        ("METRICS_TOKEN", METRICS_TOKEN),
        ("AWS_SECRET_ACCESS_KEY", env.get_str("AWS_SECRET_ACCESS_KEY", "")),
    ):
        if _PLACEHOLDER in _value.lower():
            raise env.ConfigError(
                _name,
                "still holds the placeholder from docker/env.example; "
                "generate a real secret (docs/operations.md)",
            )

# --- provenance: C2PA manifests, watermark, fingerprints (docs/provenance.md) ---------
# Production: the operator's signing key, certificate chain (signer + intermediates, PEM)
# and the trust anchors checks accept (PEM roots). Development: a local root ->
# intermediate -> signer chain generated once into PROVENANCE_DEV_CA_DIR (refused in
# production: marking without the three files raises ImproperlyConfigured).
C2PA_SIGNING_KEY_FILE = env.get_str("C2PA_SIGNING_KEY_FILE")
C2PA_CERT_CHAIN_FILE = env.get_str("C2PA_CERT_CHAIN_FILE")
C2PA_TRUST_ANCHORS_FILE = env.get_str("C2PA_TRUST_ANCHORS_FILE")
# RFC 3161 timestamp authority. None in development: signatures then stop validating
# once the signing certificate expires (docs/provenance.md).
C2PA_TSA_URL = env.get_str("C2PA_TSA_URL") or None
PROVENANCE_DEV_CA_DIR = Path(
    env.get_str("PROVENANCE_DEV_CA_DIR", str(VAR_DIR / "provenance-ca"))
).resolve()
PROVENANCE_WATERMARK_SEED = env.get_int("PROVENANCE_WATERMARK_SEED", 0x5719E1ED, minimum=0)
PROVENANCE_WATERMARK_STRENGTH = float(env.get_str("PROVENANCE_WATERMARK_STRENGTH", "3.0"))
PROVENANCE_MATCH_DISTANCE = env.get_int("PROVENANCE_MATCH_DISTANCE", 31, minimum=0)
PROVENANCE_PUBLIC_CHECK = env.get_bool("PROVENANCE_PUBLIC_CHECK", False)
# The public check's rate limit per client IP (provenance/throttling.py): DRF's
# "<n>/<second|minute|hour|day>", counted in this cache alias, with the address read
# through this many trusted reverse proxies' X-Forwarded-For (0: REMOTE_ADDR).
PROVENANCE_PUBLIC_CHECK_RATE = env.get_str("PROVENANCE_PUBLIC_CHECK_RATE", "30/minute")
PROVENANCE_THROTTLE_CACHE = env.get_str("PROVENANCE_THROTTLE_CACHE", "default")
PROVENANCE_PUBLIC_CHECK_PROXIES = env.get_int("PROVENANCE_PUBLIC_CHECK_PROXIES", 0, minimum=0)
# The fingerprint lookup runs as a server-side prepared statement (planned once per
# connection); turn off behind a transaction-pooling PgBouncer (provenance/index.py).
PROVENANCE_PREPARED_LOOKUP = env.get_bool("PROVENANCE_PREPARED_LOOKUP", True)
# Released jobs whose marking failed are retried by a periodic sweep: how often, how many a run.
PROVENANCE_SWEEP_SECONDS = env.get_int("PROVENANCE_SWEEP_SECONDS", 300, minimum=1)
PROVENANCE_SWEEP_BATCH = env.get_int("PROVENANCE_SWEEP_BATCH", 20, minimum=1)
