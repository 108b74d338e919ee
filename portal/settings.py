"""Settings of the PolicyGrid portal, read once from the environment with typed helpers.

Defaults give the embedded setup (SQLite, local file storage, the local runtime, the filesystem Celery
broker, no external service); production sets DATABASE_URL, CELERY_BROKER_URL, storage and secrets.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.environment import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


# State folder of the embedded setup: SQLite file, uploaded assets, broker folders, keys.
STATE_DIR = Path(env_str("POLICYGRID_STATE_DIR", str(BASE_DIR / "state"))).resolve()
DEBUG = env_bool("DJANGO_DEBUG", False)
# The embedded default needs no configuration; a production deployment must set its own key.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "policygrid-embedded-insecure-key-change-me")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular_sidecar",
    "drf_spectacular",
    "django_celery_results",
    "portal",
    "records",
    "audit",
    "accounts",
    "governance",
    "policies",
    "executors",
    "jobs",
    "functions",
    "graphs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "records.middleware.ApiBodyLimitMiddleware",
    "audit.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.csp.PortalCSPMiddleware",
]

ROOT_URLCONF, WSGI_APPLICATION = "portal.urls", "portal.wsgi.application"
# The API's paths have no trailing slash (as in the description); never redirect POSTs to add one.
APPEND_SLASH = False

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{STATE_DIR / 'policygrid.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: write-ahead logging lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock when they begin (a transaction that reads then writes
    # can't deadlock on the upgrade), and writers wait up to `timeout` seconds for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    # Connections persist like PostgreSQL's (DATABASE_CONN_MAX_AGE): opening one (Django registers its SQL
    # functions, the PRAGMAs run) costs more than a fast request's queries. An idle connection holds no lock.
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One test database per test process, so that parallel runs on one server never collide.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: a few columns of records read on hot routes, by key (records/cache.py) --------------------
# The process that saves or deletes a record invalidates its entry, so every process serving the database must
# share the cache: Django's local-memory cache (one per process) would let the others serve a stale record.
# * SQLite (the embedded default): Django's file cache in the state folder, shared by every process of the
#   machine, as the database file is.
# * Another database: no cache unless POLICYGRID_CACHE_URL names one that all the deployment's processes share:
#   redis:// (Django's Redis cache; several machines) or file:///a/folder (Django's file cache; one machine).
#   Without it every call reads the records from the database: slower, never stale.
# Entries also expire after POLICYGRID_RECORD_CACHE_SECONDS: the bound for writers that bypass save().
CACHE_URL = env_str("POLICYGRID_CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "records.cache_backends.SharedRedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": env_str("POLICYGRID_CACHE_PREFIX", "policygrid")}}
elif CACHE_URL.startswith("file:///"):
    CACHES = {"default": {"BACKEND": "records.cache_backends.FileCache",
                          "LOCATION": CACHE_URL[len("file://"):], "OPTIONS": {"MAX_ENTRIES": 10000}}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"POLICYGRID_CACHE_URL must be a redis://, rediss://, unix:// or file:/// URL, "
                               f"not {CACHE_URL!r}")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    CACHES = {"default": {"BACKEND": "records.cache_backends.FileCache",
                          "LOCATION": str(STATE_DIR / "django-cache"), "OPTIONS": {"MAX_ENTRIES": 10000}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
RECORD_CACHE = "default"
RECORD_CACHE_SECONDS = env_int("POLICYGRID_RECORD_CACHE_SECONDS", 60)

# ModelBackend's answers in one query instead of two per request (accounts.authentication.RoleBackend).
AUTHENTICATION_BACKENDS = ["accounts.authentication.RoleBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(STATE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("POLICYGRID_MEDIA_ROOT", str(STATE_DIR / "media")))
WHITENOISE_USE_FINDERS = True
# WhiteNoise wants STATIC_ROOT to exist (no collectstatic); never inside a state folder that doesn't exist.
if STATIC_ROOT.parent.is_dir():
    STATIC_ROOT.mkdir(exist_ok=True)

# The pages' CSP (django-csp): scripts from our static files only; Swagger UI and the admin inline theirs.
CONTENT_SECURITY_POLICY = {"EXCLUDE_URL_PREFIXES": ["/api/docs/", "/admin/"], "DIRECTIVES": {"default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'", "'unsafe-inline'"], "img-src": ["'self'", "data:"], "object-src": ["'none'"], "base-uri": ["'self'"], "frame-ancestors": ["'none'"]}}
LOGIN_URL = "/portal/login/"
LOGIN_REDIRECT_URL = "/portal/"
LOGOUT_REDIRECT_URL = "/portal/login/"

# --- Storage of policy packages (assets): local files by default, S3/Ceph/MinIO through boto3 ----------
ASSET_STORAGE = env_str("POLICYGRID_ASSET_STORAGE", "local")  # "local" or "s3"
if ASSET_STORAGE == "s3":
    ASSET_STORAGE_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("POLICYGRID_S3_BUCKET"),
            "endpoint_url": os.environ.get("POLICYGRID_S3_ENDPOINT_URL") or None,
            "access_key": os.environ.get("POLICYGRID_S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("POLICYGRID_S3_SECRET_ACCESS_KEY") or None,
            "region_name": os.environ.get("POLICYGRID_S3_REGION") or None,
            "location": env_str("POLICYGRID_S3_PREFIX", "assets"),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
elif ASSET_STORAGE == "local":
    ASSET_STORAGE_BACKEND = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "assets")},
    }
else:
    raise ImproperlyConfigured(f"POLICYGRID_ASSET_STORAGE must be 'local' or 's3', not {ASSET_STORAGE!r}")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "assets": ASSET_STORAGE_BACKEND,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- The API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes unauthenticated requests answer 401, not 403.
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RolePermission"],
    "DEFAULT_PARSER_CLASSES": ["records.api.parsers.JsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "records.api.pagination.EnvelopePagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "records.api.errors.exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PolicyGrid API",
    "DESCRIPTION": "Registry, governance and execution of policy code. The envelope, status codes and the query and update languages are described in the repository's docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: its schemas are JSON Schema (2020-12), the dialect the execute body is validated with.
    "OAS_VERSION": "3.1.0",
    "PREPROCESSING_HOOKS": ["records.api.schema.spec_paths"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "records.api.schema.envelope_responses"],
    # Swagger UI served from the sidecar package: the docs page works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Limits of docs/api.md §1 (configurable).
API_MAX_BODY_BYTES = env_int("POLICYGRID_MAX_BODY_BYTES", 1024 * 1024)
API_MAX_UPLOAD_BYTES = env_int("POLICYGRID_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
QUERY_MAX_DEPTH = env_int("POLICYGRID_QUERY_MAX_DEPTH", 8)
# Containers nested in a JSON body (records.api.parsers): far beyond any schema, far below the stack's depth.
API_MAX_JSON_DEPTH = env_int("POLICYGRID_MAX_JSON_DEPTH", 64)
# The largest ?skip= / ?limit= of a query: their sum must stay within SQL's 64-bit integers.
QUERY_MAX_SKIP_LIMIT = 10**18
QUERY_MAX_NODES = env_int("POLICYGRID_QUERY_MAX_NODES", 200)
# Seconds of database time a query (POST /<resource>/query, a filtered list) may take before it answers 504
# (records.budget); well under the web server's worker timeout, so that a worker is never killed mid-query.
QUERY_TIME_BUDGET = env_float("POLICYGRID_QUERY_TIME_BUDGET", 10)
API_MAX_PAGE_SIZE = env_int("POLICYGRID_MAX_PAGE_SIZE", 500)
# A /query without page, page_size or limit answers every match up to this many, else 400 saying to page
# (never a silent first page: the earlier system's clients read no `pagination`).
QUERY_MAX_RESULTS = env_int("POLICYGRID_QUERY_MAX_RESULTS", 10000)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Reads without a token: off unless the deployment turns it on.
ANONYMOUS_READ = env_bool("POLICYGRID_ANONYMOUS_READ", False)
# Development only: let drafts and versions in review run without "dry_run" (docs/governance.md §2).
RELAX_EXECUTION_GATE = env_bool("POLICYGRID_RELAX_EXECUTION_GATE", False)

# --- Governance (docs/governance.md) -------------------------------------------------------------------
# Distinct reviewers' approvals a version needs (2 for four-eyes deployments).
APPROVALS_REQUIRED = env_int("POLICYGRID_APPROVALS_REQUIRED", 1)
# Sign a release statement with Ed25519 when a version becomes approved (§5).
SIGNING_ENABLED = env_bool("POLICYGRID_SIGNING", True)
# How long the portal's signed grant of one execution stays valid (seconds): it covers the call's delivery,
# including one package upload, not its run.
EXECUTION_GRANT_SECONDS = env_int("POLICYGRID_EXECUTION_GRANT_SECONDS", 60)
# The key store: private keys (mode 0600) live here and never leave it.
SIGNING_KEY_DIR = Path(env_str("POLICYGRID_KEY_STORE", str(STATE_DIR / "keys")))
# Record execution inputs in the audit trail (§3: not the input unless the deployment asks).
AUDIT_EXECUTION_INPUTS = env_bool("POLICYGRID_AUDIT_INPUTS", False)
# Signed checkpoints of the audit chain's head (§3): every N entries (0: never) and every M minutes (beat),
# each stored in the database and appended to a file outside it.
AUDIT_CHECKPOINT_EVERY = env_int("POLICYGRID_AUDIT_CHECKPOINT_EVERY", 100)
AUDIT_CHECKPOINT_MINUTES = env_float("POLICYGRID_AUDIT_CHECKPOINT_MINUTES", 10)
AUDIT_CHECKPOINT_FILE = Path(env_str("POLICYGRID_AUDIT_CHECKPOINT_FILE", str(STATE_DIR / "audit-checkpoints.jsonl")))

# --- Package fetching at registration (docs/runtime.md §1) -------------------------------------------------
PACKAGE_ALLOW_PRIVATE_NETWORKS = env_bool("POLICYGRID_ALLOW_PRIVATE_NETWORKS", False)
PACKAGE_ALLOW_LOCAL_PATHS = env_bool("POLICYGRID_ALLOW_LOCAL_PATHS", False)
PACKAGE_CACHE_DIR = Path(env_str("POLICYGRID_CACHE_DIR", str(STATE_DIR / "cache")))
# The portal's own address, which names uploaded assets (``<it>/asset-object/<id>``). By default the address
# ./run.sh serves on, so that a portal on another POLICYGRID_PORT names its assets where they are.
PUBLIC_BASE_URL = env_str(
    "POLICYGRID_PUBLIC_URL",
    f"http://{env_str('POLICYGRID_HOST', '127.0.0.1')}:{env_int('POLICYGRID_PORT', 8000)}",
).rstrip("/")

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(STATE_DIR / "broker" / "out"),
        "data_folder_out": str(STATE_DIR / "broker" / "out"),
        "processed_folder": str(STATE_DIR / "broker" / "processed"),
        # kombu's default is ./control, i.e. wherever the process happens to start.
        "control_folder": str(STATE_DIR / "broker" / "control"),
        "store_processed": False, "polling_interval": env_float("POLICYGRID_BROKER_POLLING_INTERVAL", 0.05),
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    # Redis: a message a worker took and never acknowledged (the worker died) is delivered again after this many
    # seconds; longer than any task runs or waits for its ETA (docs/operations.md).
    else {"visibility_timeout": env_int("POLICYGRID_BROKER_VISIBILITY_TIMEOUT", 3600)}
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport with atomic writes (portal/broker.py explains the race it closes).
    CELERY_BROKER_TRANSPORT = "portal.broker:Transport"
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A lost worker loses no task (issue 13): a task is acknowledged once it has run, not when a worker takes it, and
# one whose pool process died is put back in the queue; a worker takes one message per process at a time, so
# a stalled worker holds few. Every task is idempotent (probes, checkpoints, heartbeats), so running one twice
# is harmless. On the filesystem broker a message taken by a process that died goes back too (portal/broker.py).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task that never ends is killed (its pool process replaced): above the longest graph run's timeout.
CELERY_TASK_TIME_LIMIT = env_int("POLICYGRID_TASK_TIME_LIMIT", 3900)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Executors (Type 2) and their health probes (issue 4) ---------------------------------------------
# The shared secret the portal sends to executor services (``Authorization: Bearer …``). The embedded run
# generates it into the state folder, which is read when the variable is not set.
_executor_token_file = STATE_DIR / "executor" / "executor-token"
EXECUTOR_TOKEN = env_str("POLICYGRID_EXECUTOR_TOKEN", "") or (
    _executor_token_file.read_text().strip() if _executor_token_file.is_file() else ""
)
EXECUTOR_CALL_TIMEOUT = env_float("POLICYGRID_EXECUTOR_CALL_TIMEOUT", 30)  # a call without timeout_seconds
EXECUTOR_MAX_CALL_TIMEOUT = env_float("POLICYGRID_EXECUTOR_MAX_CALL_TIMEOUT", 300)
EXECUTOR_TIMEOUT_MARGIN = env_float("POLICYGRID_EXECUTOR_TIMEOUT_MARGIN", 5)  # added for the HTTP round trip
EXECUTOR_CONNECT_TIMEOUT = env_float("POLICYGRID_EXECUTOR_CONNECT_TIMEOUT", 3)
# An executor whose last probe found it unreachable is tried anyway, but gives up on connecting quickly.
EXECUTOR_UNREACHABLE_CONNECT_TIMEOUT = env_float("POLICYGRID_EXECUTOR_UNREACHABLE_CONNECT_TIMEOUT", 0.5)
EXECUTOR_PROBE_INTERVAL = env_float("POLICYGRID_EXECUTOR_PROBE_INTERVAL", 30)
EXECUTOR_PROBE_CONNECT_TIMEOUT = env_float("POLICYGRID_EXECUTOR_PROBE_CONNECT_TIMEOUT", 1)
EXECUTOR_PROBE_TIMEOUT = env_float("POLICYGRID_EXECUTOR_PROBE_TIMEOUT", 3)
EXECUTOR_DEGRADED_LATENCY_MS = env_float("POLICYGRID_EXECUTOR_DEGRADED_LATENCY_MS", 1000)
EXECUTOR_PROBE_CONCURRENCY = env_int("POLICYGRID_EXECUTOR_PROBE_CONCURRENCY", 16)
# Jobs (Type 3, docs/api.md §4.4): default and largest timeout_seconds; how long past its timeout a job with no
# sign of life is kept before it is ``lost``; how often the unfinished jobs are reconciled with their runtime.
JOB_DEFAULT_TIMEOUT = env_int("POLICYGRID_JOB_DEFAULT_TIMEOUT", 600)
JOB_MAX_TIMEOUT = env_int("POLICYGRID_JOB_MAX_TIMEOUT", 86400)
JOB_LOST_GRACE = env_int("POLICYGRID_JOB_LOST_GRACE", 60)
JOB_RECONCILE_INTERVAL = env_float("POLICYGRID_JOB_RECONCILE_INTERVAL", 30)
# Functions, the resource allocator (docs/runtime.md §6) and the Kubernetes runtime: README, Configuration.
FUNCTION_DEPLOY_TIMEOUT = env_float("POLICYGRID_FUNCTION_DEPLOY_TIMEOUT", 120)
FUNCTION_RECONCILE_INTERVAL = env_float("POLICYGRID_FUNCTION_RECONCILE_INTERVAL", 30)
# Graph runs (Type 5): default and largest timeout_seconds of a run; how often active runs are reconciled.
GRAPH_RUN_TIMEOUT, GRAPH_MAX_RUN_TIMEOUT = (env_float("POLICYGRID_GRAPH_RUN_TIMEOUT", 300),
                                            env_float("POLICYGRID_GRAPH_MAX_RUN_TIMEOUT", 3600))
GRAPH_RECONCILE_INTERVAL = env_float("POLICYGRID_GRAPH_RECONCILE_INTERVAL", 15)
RESOURCE_ALLOCATOR_URI = env_str("POLICYGRID_RESOURCE_ALLOCATOR_URI", "resource_allocator:1.0-default")
RESOURCE_ALLOCATOR_TIMEOUT = env_float("POLICYGRID_RESOURCE_ALLOCATOR_TIMEOUT", 10)
KUBECONFIG_KEYS = env_list("POLICYGRID_KUBECONFIG_KEYS", [])  # Fernet keys of kubeconfigs, newest first (docs/kubernetes.md)
KUBERNETES_IMAGE = env_str("POLICYGRID_KUBERNETES_IMAGE", "ghcr.io/policygrid/policygrid-dataplane:latest")  # create-infra's
# Each entry expires after one period: a backlog of stale probes or checkpoints is useless while workers are down.
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": every, "options": {"expires": every}}
    for name, task, every in (("reconcile-jobs", "jobs.reconcile_jobs", JOB_RECONCILE_INTERVAL),
                              ("reconcile-functions", "functions.reconcile_functions", FUNCTION_RECONCILE_INTERVAL),
                              ("reconcile-graph-runs", "graphs.reconcile_runs", GRAPH_RECONCILE_INTERVAL),
                              ("probe-executors", "executors.probe_executors", EXECUTOR_PROBE_INTERVAL),
                              ("audit-checkpoint", "audit.checkpoint", AUDIT_CHECKPOINT_MINUTES * 60))
}

LOGGING = {"version": 1, "disable_existing_loggers": False, "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": env_str("POLICYGRID_LOG_LEVEL", "INFO")}, "loggers": {"django.request": {"level": "ERROR"}}}
