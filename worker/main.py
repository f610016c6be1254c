"""The worker's entry module (``celery -A worker``): its Flask app and Celery app, built from the environment
like the web's, with the tasks and the signal handlers registered. Nothing imports it but Celery's loader."""
from config import Config
from webapp import create_app
from worker import signals, tasks  # noqa: F401  (registers the signal handlers and the tasks)


def worker_overrides(config: Config) -> dict:
    """PostgreSQL: the worker's commits do not wait for the disk. A result lost in a database crash
    leaves its recognition ``running``, and the sweeper runs it again: nothing is lost, each
    recognition saves an fsync wait (the web's commits, which nothing could redo, still wait).
    Redis: the transport with fewer round trips per message (``worker/broker.py``)."""
    overrides = {}
    if config.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
        options = dict(config.SQLALCHEMY_ENGINE_OPTIONS)
        options["connect_args"] = {**options.get("connect_args", {}), "options": "-c synchronous_commit=off"}
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if config.CELERY["broker_url"].startswith("redis://") and config.WORKER_FAST_BROKER:
        overrides["CELERY"] = {**config.CELERY, "broker_transport": "worker.broker:Transport"}
    return overrides


flask_app = create_app(worker_overrides(Config()))
celery_app = flask_app.extensions["celery"]
