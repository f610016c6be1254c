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
        self.TRAINING_OUTLIERS_DIR = env("TRAINING_OUTLIERS_DIR", "") or None  # landmarks not ours (ml.data.split_outliers)
        self.TRAINING_WEIGHTS = env("TRAINING_WEIGHTS", "") or None  # local ImageNet weights file (no download)
        self.TRAINING_ARCH = env("TRAINING_ARCH", "mobilenetv2")
        self.TRAINING_OPTIONS = json.loads(env("TRAINING_OPTIONS", "") or "{}")  # extra TrainConfig fields, JSON
        self.TRAINING_TIMEOUT_S = env_int("TRAINING_TIMEOUT_S", 6 * 3600)  # a run still "training" longer: dead
        self.MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 20)
        self.MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 40_000_000)
        self.BROKER_POLLING_INTERVAL = float(env("BROKER_POLLING_INTERVAL", "0.05"))
        # --- inference workers (worker/model.py, worker/batching.py) ---
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
        self.CELERY = {
            "broker_url": env("CELERY_BROKER_URL", f"sqla+sqlite:///{INSTANCE_DIR / 'broker.sqlite'}"),
            "task_ignore_result": True,  # the database is the source of truth, not a result backend
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_routes": {  # exact names first, then patterns
                "worker.tasks.sweep": {"queue": "maintenance"},
                "worker.tasks.purge": {"queue": "maintenance"},
                "worker.tasks.train_model": {"queue": "training"},
                "worker.tasks.*": {"queue": "inference"},
            },
            "beat_schedule": {
                "sweep-stuck-recognitions": {"task": "worker.tasks.sweep", "schedule": float(self.SWEEP_INTERVAL_S)},
                "purge-old-uploads": {"task": "worker.tasks.purge", "schedule": float(self.PURGE_INTERVAL_S)},
            },
            "beat_schedule_filename": str(INSTANCE_DIR / "celerybeat-schedule"),
            "task_default_queue": "inference",
            "broker_connection_retry_on_startup": True,
        }
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}  # survive database restarts
        self.WTF_CSRF_TIME_LIMIT = None  # a visitor may leave the page open for hours
        # --- operations (webapp/observability.py, webapp/logs.py, worker/heartbeat.py; docs/operations.md) ---
        self.LOG_FORMAT = env("LOG_FORMAT", "text")  # "json": one JSON object per line (production)
        self.LOG_LEVEL = env("LOG_LEVEL", "INFO")
        self.HEARTBEAT_INTERVAL_S = float(env("HEARTBEAT_INTERVAL_S", "10"))  # each worker process's sign of life
        self.WORKER_STALE_S = env_int("WORKER_STALE_S", 30)  # no heartbeat for this long: the worker is gone
        self.METRICS_WINDOW_S = env_int("METRICS_WINDOW_S", 300)  # /metrics latency histograms cover this window
        self.READY_REQUIRES_WORKER = env_bool("READY_REQUIRES_WORKER", False)  # /readyz: 503 without a live worker
        # --- security (webapp/security.py) ---
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)  # `make run` sets 0 (plain http)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")  # redis://… shared by all web processes
        self.RATELIMIT_HEADERS_ENABLED = True  # Retry-After and X-RateLimit-* on limited routes
        self.UPLOAD_RATE_LIMIT = env("UPLOAD_RATE_LIMIT", "10/minute;200/hour")  # per client, page and API together
        self.API_RATE_LIMIT = env("API_RATE_LIMIT", "300/minute")  # per client, reads (the result page polls)
        self.LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", "10/minute;50/hour")  # sign-in attempts per client
        self.BABEL_DEFAULT_LOCALE = "en"
        self.LANGUAGES = ("vi", "en")
