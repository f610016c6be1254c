"""Celery wired to Flask: the Flask docs' ``celery_init_app`` pattern."""
from __future__ import annotations

from celery import Celery, Task
from flask import Flask, has_app_context


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            # A nested app context would give the task a second, invisible database
            # session (eager calls inside a request or test), so reuse the one we are in.
            if has_app_context():
                return self.run(*args, **kwargs)
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    if celery_app.conf.broker_url.startswith("sqla+"):
        _tune_embedded_broker(app.config["BROKER_POLLING_INTERVAL"])
    celery_app.set_default()
    celery_app.flask_app = app  # how the worker's signal handlers reach the app (worker/signals.py)
    app.extensions["celery"] = celery_app
    return celery_app


def _tune_embedded_broker(seconds: float) -> None:
    """Poll the SQLite broker every ``seconds`` instead of kombu's default 1 s.

    kombu passes every transport option to ``create_engine``, so the interval
    cannot go through ``broker_transport_options``; it is set on the transport.
    """
    from kombu.transport.sqlalchemy import Transport

    Transport.polling_interval = seconds
