"""The worker's entry module (``celery -A worker``): its Flask app and Celery app, built from the environment
like the web's, with the tasks and the signal handlers registered. Nothing imports it but Celery's loader."""
from config import Config
from webapp import create_app
from worker import signals, tasks  # noqa: F401  (registers the signal handlers and the tasks)


def worker_overrides(config: Config) -> dict:
    """PostgreSQL: the worker's commits do not wait for the disk. A result lost in a database crash
    leaves its recognition ``running``, and the sweeper runs it again: nothing is lost, each
    recognition saves an fsync wait (the web's commits, which nothing could redo, still wait)."""
    if not config.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
        return {}
    options = dict(config.SQLALCHEMY_ENGINE_OPTIONS)
    options["connect_args"] = {**options.get("connect_args", {}), "options": "-c synchronous_commit=off"}
    return {"SQLALCHEMY_ENGINE_OPTIONS": options}


flask_app = create_app(worker_overrides(Config()))
celery_app = flask_app.extensions["celery"]
