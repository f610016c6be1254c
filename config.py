"""Every setting in one place, read from environment variables with working defaults.

The defaults need no server at all: SQLite for the data and kombu's SQLAlchemy
transport on SQLite as the Celery broker, both under ``instance/``. Point
``DATABASE_URL`` / ``CELERY_BROKER_URL`` at PostgreSQL / Redis for production.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

# Celery task names, the one spelling: the web enqueues by name (it never imports the worker), the worker
# registers its tasks under them (worker/tasks.py), and the routes below send each to its queue.
RECOGNIZE_TASK = "worker.tasks.recognize"  # args: [Recognition id]
RECOGNIZE_ALBUM_TASK = "worker.tasks.recognize_album"  # the same, for an album's photo (its own queue)
EMBED_TASK = "worker.tasks.embed_references"  # args: [list of ReferencePhoto ids] or none (all missing)
TRAIN_TASK = "worker.tasks.train_model"  # args: [ModelVersion id]
SWEEP_TASK = "worker.tasks.sweep"
PURGE_TASK = "worker.tasks.purge"

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))


def database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way (postgres:// or postgresql://)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


KNOWN_KEYS = {"dev-only-change-me", "change-me", "secret"}  # the old default and obvious examples


def instance_secret_key() -> str:
    """This instance's own random key, created once in the instance folder (mode 0600) and shared by
    every process started from it; never a well-known default that lets anyone forge a session."""
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # atomic: the first process to start wins, the others read its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


class Config:
    """Production-ready defaults; every attribute can be overridden from the environment."""

    def __init__(self) -> None:
        env = os.environ.get
        self.SECRET_KEY = env("SECRET_KEY", "") or instance_secret_key()
        if self.SECRET_KEY in KNOWN_KEYS:
            raise ValueError("SECRET_KEY is a published example value: set a long random one (or leave it unset "
                             "for a key generated in the instance folder)")
        self.SQLALCHEMY_DATABASE_URI = database_url(
            env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'app.sqlite'}")
        )
        self.UPLOAD_DIR = env("UPLOAD_DIR", str(INSTANCE_DIR / "uploads"))
        self.REFERENCE_DIR = env("REFERENCE_DIR", str(INSTANCE_DIR / "references"))  # editors' reference photos
        self.MODEL_BUNDLE = env("MODEL_BUNDLE", "") or None  # None: the shipped bundle
        self.MODEL_DIR = env("MODEL_DIR", str(INSTANCE_DIR / "models"))  # bundles trained by "Retrain"
        # base dataset(s) for retraining: a folder per class; several joined by os.pathsep, or a folder of them
        self.TRAINING_DATA_DIR = env("TRAINING_DATA_DIR", "") or None
        self.TRAINING_NEGATIVES_DIR = env("TRAINING_NEGATIVES_DIR", "") or None  # non-landmark photos for retraining
        # landmarks not ours (ml.data.split_outliers)
        self.TRAINING_OUTLIERS_DIR = env("TRAINING_OUTLIERS_DIR", "") or None
        self.TRAINING_WEIGHTS = env("TRAINING_WEIGHTS", "") or None  # local ImageNet weights file (no download)
        self.TRAINING_ARCH = env("TRAINING_ARCH", "mobilenetv2")
        self.TRAINING_OPTIONS = json.loads(env("TRAINING_OPTIONS", "") or "{}")  # extra TrainConfig fields, JSON
        self.TRAINING_TIMEOUT_S = env_int("TRAINING_TIMEOUT_S", 6 * 3600)  # a run still "training" longer: dead
        self.MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 20)
        self.MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 40_000_000)
        self.MAX_DECODE_MB = env_int("MAX_DECODE_MB", 256)  # memory one decode may take (ml.images.decode_cost)
        self.LARGE_DECODE_MB = env_int("LARGE_DECODE_MB", 48)  # decodes above this wait for one of LARGE_DECODES
        self.LARGE_DECODES = env_int("LARGE_DECODES", 2)  # at once per web process (webapp.uploads.large_decode_slot)
        self.DECODE_WAIT_S = float(env("DECODE_WAIT_S", "20"))  # then the upload is answered 503
        # --- trip albums (webapp/albums.py) ---
        self.ALBUM_MAX_PHOTOS = env_int("ALBUM_MAX_PHOTOS", 100)
        self.ALBUM_MAX_REQUEST_MB = env_int("ALBUM_MAX_REQUEST_MB", 256)  # one multi-photo post (API, form without JS)
        self.BROKER_POLLING_INTERVAL = float(env("BROKER_POLLING_INTERVAL", "0.05"))
        # --- inference workers (worker/engine.py, ml/serving.py, worker/batching.py) ---
        self.INFERENCE_THREADS = env_int("INFERENCE_THREADS", 0)  # model threads per worker process; 0: auto
        self.INFERENCE_RUNTIME = env("INFERENCE_RUNTIME", "auto")  # auto: TensorFlow on a GPU, else LiteRT
        self.INFERENCE_MAX_BATCH = env_int("INFERENCE_MAX_BATCH", 32)  # images per model call at most
        # LiteRT: the bundle's int8 model first, the float one for unclear photos (ml/fastpath.py); 0: float only
        self.INFERENCE_FAST_PATH = env_bool("INFERENCE_FAST_PATH", True)
        self.INFERENCE_MAX_WAIT_MS = float(env("INFERENCE_MAX_WAIT_MS", "5"))  # linger for announced images
        # Redis: the worker's transport with fewer round trips per message (worker/broker.py); 0: kombu's own
        self.WORKER_FAST_BROKER = env_bool("WORKER_FAST_BROKER", True)
        self.MODEL_CHECK_S = float(env("MODEL_CHECK_S", "2"))  # how often a worker looks for a new active model
        # --- nothing lost, nothing kept too long (webapp/maintenance.py) ---
        self.RECOGNITION_TIMEOUT_S = env_int("RECOGNITION_TIMEOUT_S", 600)  # queued/running longer: stuck
        self.SWEEP_MAX_REQUEUES = env_int("SWEEP_MAX_REQUEUES", 3)  # then it ends failed, with a reason
        self.SWEEP_INTERVAL_S = env_int("SWEEP_INTERVAL_S", 60)
        self.RETENTION_DAYS = env_int("RETENTION_DAYS", 30)  # 0 keeps uploads forever
        self.PURGE_INTERVAL_S = env_int("PURGE_INTERVAL_S", 3600)
        self.CELERY: dict[str, Any] = {
            "broker_url": env("CELERY_BROKER_URL", f"sqla+sqlite:///{INSTANCE_DIR / 'broker.sqlite'}"),
            "task_ignore_result": True,  # the database is the source of truth, not a result backend
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_routes": {  # exact names first, then patterns
                SWEEP_TASK: {"queue": "maintenance"},
                PURGE_TASK: {"queue": "maintenance"},
                TRAIN_TASK: {"queue": "training"},
                # an album's photos: their own queue, which every inference worker also consumes; kombu
                # takes from a worker's queues in turn, so a single photo never waits behind a whole album
                RECOGNIZE_ALBUM_TASK: {"queue": "inference-album"},
                "worker.tasks.*": {"queue": "inference"},  # RECOGNIZE_TASK, EMBED_TASK
            },
            "beat_schedule": {
                "sweep-stuck-recognitions": {"task": SWEEP_TASK, "schedule": float(self.SWEEP_INTERVAL_S)},
                "purge-old-uploads": {"task": PURGE_TASK, "schedule": float(self.PURGE_INTERVAL_S)},
            },
            "beat_schedule_filename": str(INSTANCE_DIR / "celerybeat-schedule"),
            "task_default_queue": "inference",
            "broker_connection_retry_on_startup": True,
        }
        self.SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}  # survive database restarts
        self.WTF_CSRF_TIME_LIMIT = None  # a visitor may leave the page open for hours
        # --- operations (webapp/observability/, webapp/logs.py, worker/heartbeat.py; docs/operations.md) ---
        self.LOG_FORMAT = env("LOG_FORMAT", "text")  # "json": one JSON object per line (production)
        self.LOG_LEVEL = env("LOG_LEVEL", "INFO")
        self.HEARTBEAT_INTERVAL_S = float(env("HEARTBEAT_INTERVAL_S", "10"))  # each worker process's sign of life
        self.WORKER_STALE_S = env_int("WORKER_STALE_S", 30)  # no heartbeat for this long: the worker is gone
        self.METRICS_WINDOW_S = env_int("METRICS_WINDOW_S", 300)  # /metrics latency histograms cover this window
        self.METRICS_TOKEN = env("METRICS_TOKEN", "")  # set: /metrics needs "Authorization: Bearer <it>"
        self.READY_REQUIRES_WORKER = env_bool("READY_REQUIRES_WORKER", False)  # /readyz: 503 without a live worker
        # --- security (webapp/security.py) ---
        self.TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)  # reverse proxies in front (ProxyFix hops); 0: none
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)  # `make run` sets 0 (plain http)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")  # redis://… shared by all web processes
        # that Redis down: count in each process's memory meanwhile (limits stay, per process) instead of a 500
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = env_bool("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        if self.RATELIMIT_STORAGE_URI.startswith(("redis", "rediss")):  # an unreachable Redis fails fast
            self.RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
        self.RATELIMIT_HEADERS_ENABLED = True  # Retry-After and X-RateLimit-* on limited routes
        # photos (not requests) per client address: single uploads and albums, page and API, share one budget
        self.UPLOAD_PHOTO_LIMIT = env("UPLOAD_PHOTO_LIMIT", "100 per 10 minutes")
        self.API_RATE_LIMIT = env("API_RATE_LIMIT", "300/minute")  # per client, reads (the result page polls)
        self.LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", "10/minute;50/hour")  # sign-in attempts per client
        self.SEARCH_RATE_LIMIT = env("SEARCH_RATE_LIMIT", "60/minute")  # catalog searches per client
        self.LOGIN_ACCOUNT_RATE_LIMIT = env("LOGIN_ACCOUNT_RATE_LIMIT", "10/15 minutes")  # failed sign-ins per email
        self.BABEL_DEFAULT_LOCALE = "en"
        self.LANGUAGES = ("vi", "en")
