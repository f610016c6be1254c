"""The worker's logs in ``LOG_FORMAT`` (webapp/logs.py), tagged with the recognition being worked on.

Celery sets up its handlers (``--loglevel``, ``--logfile``, stdout redirection) as usual; with
``LOG_FORMAT=json`` their formatters are replaced so Celery's own lines are JSON too. While a
``recognize`` (or ``recognize_album``) task runs, its first argument (the recognition id) tags every line of its thread.
"""
from __future__ import annotations

from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun
from celery.utils.log import get_multiprocessing_logger

from webapp.logs import bind_recognition, use_format
from webapp.uploads import RECOGNIZE_ALBUM_TASK, RECOGNIZE_TASK


@after_setup_logger.connect
@after_setup_task_logger.connect
def _format_celery_logs(logger=None, **_kwargs) -> None:
    from worker.main import flask_app

    if flask_app.config["LOG_FORMAT"] == "json" and logger is not None:
        use_format(logger, "json")
        if (mp_logger := get_multiprocessing_logger()) is not None:
            use_format(mp_logger, "json")


@task_prerun.connect
def _tag(task=None, args=None, **_kwargs) -> None:
    if task is not None and task.name in (RECOGNIZE_TASK, RECOGNIZE_ALBUM_TASK) and args:
        bind_recognition(str(args[0]))


@task_postrun.connect
def _untag(**_kwargs) -> None:
    bind_recognition(None)
