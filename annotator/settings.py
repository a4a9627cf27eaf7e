"""Django settings, read from the environment (see README for the variables)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
from django.core.exceptions import ImproperlyConfigured

from .config.celery import celery_settings
from .config.database import database_settings
from .config.env import env_bool, env_int, env_list, env_path, env_str, secret_key_file
from .config.storage import storage_settings

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("ANNOTATOR_DATA_DIR", BASE_DIR / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# Embedded default: a random key kept in the data dir, so a fresh checkout runs with no configuration.
SECRET_KEY = env_str("SECRET_KEY") or secret_key_file(DATA_DIR / "secret_key")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from the app, not a CDN
    "axes",
    "csp",
    "annotator.core",
    "annotator.projects",
    "annotator.images",
    "annotator.annotations",
    "annotator.jobs",
    "annotator.learning",
    "annotator.datasets",
    "annotator.review",
    "annotator.accounts",
    "annotator.backups",
    "annotator.quality",
    "annotator.groundtruth",
    "annotator.consensus",
    "annotator.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the body: oversized JSON bodies get a 413 without being read.
    "annotator.core.middleware.RequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "annotator.urls"
WSGI_APPLICATION = "annotator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "annotator" / "templates"],
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

DATABASES = {"default": database_settings(env_str("DATABASE_URL"), data_dir=DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: it refuses a locked-out username+IP before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"] if (BASE_DIR / "frontend" / "dist").is_dir() else []
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "media/"
STORAGES = storage_settings(media_root=MEDIA_ROOT)

# Uploads: big zips stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ANNOTATOR_MAX_REQUEST_MB", 64) * 1024 * 1024
# JSON (and any other non-multipart) bodies: a 2,000-polygon x 50-vertex save is about 3 MB.
ANNOTATOR_MAX_JSON_BYTES = env_int("ANNOTATOR_MAX_JSON_MB", 32) * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000
ANNOTATOR_MAX_IMAGE_PIXELS = env_int("ANNOTATOR_MAX_IMAGE_PIXELS", 100_000_000)
# Points per object and per image: a save over them is a 400 naming the limit; an import
# simplifies an object over the per-object limit (and reports it).
ANNOTATOR_MAX_VERTICES_PER_OBJECT = env_int("ANNOTATOR_MAX_VERTICES_PER_OBJECT", 10_000)
ANNOTATOR_MAX_VERTICES_PER_IMAGE = env_int("ANNOTATOR_MAX_VERTICES_PER_IMAGE", 200_000)
ANNOTATOR_MAX_ZIP_FILES = env_int("ANNOTATOR_MAX_ZIP_FILES", 20_000)
ANNOTATOR_MAX_ZIP_BYTES = env_int("ANNOTATOR_MAX_ZIP_MB", 4096) * 1024 * 1024
# A member that inflates more than this many times is refused before it is read (zip bomb).
ANNOTATOR_MAX_ZIP_RATIO = env_int("ANNOTATOR_MAX_ZIP_RATIO", 200)
# Project backups (restores, uploads of archives) are big by nature: their own limits.
ANNOTATOR_MAX_BACKUP_FILES = env_int("ANNOTATOR_MAX_BACKUP_FILES", 5_000_000)
ANNOTATOR_MAX_BACKUP_BYTES = env_int("ANNOTATOR_MAX_BACKUP_GB", 2048) * 1024**3
# One image file (uploaded, or a zip member) is read into memory to be decoded: at most this big.
ANNOTATOR_MAX_IMAGE_BYTES = env_int("ANNOTATOR_MAX_IMAGE_MB", 256) * 1024 * 1024
# Temporary files (uploads being received, imports being unpacked) live under the data dir, where
# `manage.py sweep_orphans` (and its beat schedule) removes what a killed process left behind.
ANNOTATOR_TMP_DIR = DATA_DIR / "tmp"
ANNOTATOR_TMP_DIR.mkdir(exist_ok=True)
FILE_UPLOAD_TEMP_DIR = str(ANNOTATOR_TMP_DIR)
# The sweeper leaves younger files alone: they may belong to an import that is still running.
ANNOTATOR_SWEEP_AFTER_HOURS = env_int("ANNOTATOR_SWEEP_AFTER_HOURS", 24)
ANNOTATOR_THUMBNAIL_SIZE = 256
# Images per chunk of an import: the unit that worker processes share (docs/imports.md).
ANNOTATOR_IMPORT_CHUNK_IMAGES = env_int("ANNOTATOR_IMPORT_CHUNK_IMAGES", 200)

# Jobs
REDIS_URL = env_str("REDIS_URL") or None
ANNOTATOR_QUEUE_PREFIX = env_str("ANNOTATOR_QUEUE_PREFIX", "") or ""
ANNOTATOR_JOB_MAX_ATTEMPTS = env_int("ANNOTATOR_JOB_MAX_ATTEMPTS", 3)
# A running job whose heartbeat is older than this is considered orphaned by a dead worker.
ANNOTATOR_JOB_STALE_SECONDS = env_int("ANNOTATOR_JOB_STALE_SECONDS", 600)
# A queued job no worker took this long after its message was sent is sent again (lost messages).
ANNOTATOR_JOB_RESEND_SECONDS = env_int("ANNOTATOR_JOB_RESEND_SECONDS", 900)
# Workers refresh their heartbeat row this often; /readyz counts a worker alive for 3 periods.
ANNOTATOR_WORKER_HEARTBEAT_SECONDS = env_int("ANNOTATOR_WORKER_HEARTBEAT_SECONDS", 30)
globals().update(celery_settings(redis_url=REDIS_URL, data_dir=DATA_DIR, queue_prefix=ANNOTATOR_QUEUE_PREFIX))

# ML
ANNOTATOR_MODEL_DIR = env_path("ANNOTATOR_MODEL_DIR", DATA_DIR / "models")
ANNOTATOR_COCO_CHECKPOINT = env_str("ANNOTATOR_COCO_CHECKPOINT") or None
# SAM 1 (sam_vit_*.pth) or SAM 2.1 (sam2.1_hiera_*.pt), told apart by the file's weights;
# `manage.py download_weights --sam VARIANT` fetches one into ANNOTATOR_MODEL_DIR/sam.
ANNOTATOR_SAM_CHECKPOINT = env_str("ANNOTATOR_SAM_CHECKPOINT") or None
# Image embeddings each web process keeps for the prompts that follow on the same image (LRU):
# 4 MiB an image with SAM 1, 16 MiB with SAM 2.1.
ANNOTATOR_SAM_CACHE_BYTES = env_int("ANNOTATOR_SAM_CACHE_MB", 512) * 1024 * 1024
# Behind it, embedding files shared by all processes on the machine (docs/sam.md), least recently
# used removed first past this bound; 0 turns the files off. Outside media/ and tmp/, so the
# orphan sweep leaves them alone.
ANNOTATOR_SAM_DISK_CACHE_BYTES = env_int("ANNOTATOR_SAM_DISK_CACHE_MB", 2048) * 1024 * 1024
ANNOTATOR_SAM_CACHE_DIR = DATA_DIR / "cache" / "sam"

REST_FRAMEWORK = {
    # Token first: scripts without credentials get a 401 with WWW-Authenticate, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # orjson: annotation payloads are mostly floats, which the standard library parses ~10x slower.
    "DEFAULT_RENDERER_CLASSES": [
        "drf_orjson_renderer.renderers.ORJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Validation errors of list items are keyed by index (integers).
    "ORJSON_RENDERER_OPTIONS": (orjson.OPT_NON_STR_KEYS,),
    "DEFAULT_PARSER_CLASSES": [
        "annotator.core.parsers.JSONParser",  # orjson, with size, NUL and depth limits
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # drf-spectacular's, with the error responses (400, 401, 403, 404; 409, 413 on writes) of every operation.
    "DEFAULT_SCHEMA_CLASS": "annotator.core.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "annotator.core.errors.exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Annotator API",
    "DESCRIPTION": "Projects, images, annotations, review queues, jobs and datasets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "annotator.images.models.ImageStatus",
        "JobKindEnum": "annotator.jobs.models.JobKind",
        "ModelKindEnum": "annotator.learning.models.ModelKind",
        "ExportFormatEnum": "annotator.datasets.models.ExportFormat",
        "ReplicaStatusEnum": "annotator.consensus.models.ReplicaStatus",
        "AttemptStatusEnum": "annotator.groundtruth.models.ATTEMPT_STATUS_CHOICES",
        "ConflictKindEnum": "ml.quality.CONFLICT_KINDS",
    },
}

# Security: production behind HTTPS unless told otherwise (make run serves plain HTTP on loopback).
_HTTPS = env_bool("ANNOTATOR_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_SSL_REDIRECT = _HTTPS and env_bool("ANNOTATOR_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _HTTPS else None
SECURE_HSTS_SECONDS = env_int("ANNOTATOR_HSTS_SECONDS", 31536000 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _HTTPS
SECURE_HSTS_PRELOAD = _HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Probes call the container over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
CSRF_FAILURE_VIEW = "annotator.core.error_views.csrf_failure"

# Login throttling (django-axes): a username+IP pair is locked out after this many failed
# logins (the /login/ page and the admin's alike) until the cool-off has passed.
AXES_FAILURE_LIMIT = env_int("ANNOTATOR_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ANNOTATOR_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "web/locked_out.html"
# The client address: REMOTE_ADDR, or X-Forwarded-For as written by this many trusted proxies.
_PROXIES = env_int("ANNOTATOR_TRUSTED_PROXY_COUNT", 0)
if _PROXIES:
    AXES_IPWARE_PROXY_COUNT = _PROXIES
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# Content-Security-Policy (django-csp): scripts and styles from this site only, no inline code.
# Pages set widths and colours from static scripts (web/page.js); images may be blob:/data: URLs
# (the editor's masks, the favicon) or, with an S3 bucket, come from its endpoint.
_MEDIA_ORIGINS = env_list("ANNOTATOR_CSP_MEDIA_ORIGINS", [])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *_MEDIA_ORIGINS],
        "connect-src": ["'self'", *_MEDIA_ORIGINS],
        "font-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
