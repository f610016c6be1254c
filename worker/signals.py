"""Every Celery signal the worker answers, in one place, in the order they fire.

- Logging is set up: with ``LOG_FORMAT=json`` Celery's own handlers get the JSON formatter (webapp/logs.py).
- A process that runs tasks loads its model, then starts its heartbeat: each prefork child at
  ``worker_process_init`` (one model thread: a process per core); for the threads and solo pools the worker
  itself at ``worker_ready`` (every core). Training and maintenance workers load no model.
- While a ``recognize`` (or ``recognize_album``) task runs, its recognition id tags every log line of its
  thread; each finished task
  counts in the heartbeat.
- At shutdown the heartbeat stops and its row goes.

The Flask app is reached through the Celery app (``celery_init_app`` sets ``celery_app.flask_app``), so
nothing imports the worker's entry module, ``worker.main``.
"""
from __future__ import annotations

from celery import current_app as current_celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from celery.utils.log import get_multiprocessing_logger

from config import RECOGNIZE_ALBUM_TASK, RECOGNIZE_TASK
from webapp.logs import bind_recognition, use_format
from worker import engine, heartbeat
from worker.layout import usable_cores


@after_setup_logger.connect
@after_setup_task_logger.connect
def format_celery_logs(logger=None, **_kwargs) -> None:
    if current_celery.flask_app.config["LOG_FORMAT"] == "json" and logger is not None:
        use_format(logger, "json")
        if (mp_logger := get_multiprocessing_logger()) is not None:
            use_format(mp_logger, "json")


@worker_process_init.connect
def start_pool_process(**_kwargs) -> None:
    """A prefork child: its own model (one model thread) and heartbeat."""
    start_serving(threads=1)


@worker_ready.connect
def start_worker(sender=None, **_kwargs) -> None:
    """Threads and solo pools run tasks in this process; prefork children start their own."""
    from celery.concurrency.prefork import TaskPool as PreforkPool

    if not isinstance(getattr(sender, "pool", None), PreforkPool):
        start_serving(threads=usable_cores())


def start_serving(threads: int) -> None:
    celery_app = current_celery._get_current_object()
    queues = sorted(celery_app.amqp.queues.consume_from)  # what -Q selected
    engine.preload(celery_app.flask_app, queues, threads)
    heartbeat.start_heartbeat(celery_app.flask_app, queues)


@task_prerun.connect
def tag_logs(task=None, args=None, **_kwargs) -> None:
    if task is not None and task.name in (RECOGNIZE_TASK, RECOGNIZE_ALBUM_TASK) and args:
        bind_recognition(str(args[0]))


@task_postrun.connect
def task_finished(**_kwargs) -> None:
    bind_recognition(None)
    heartbeat.count_task()


@worker_process_shutdown.connect
@worker_shutdown.connect
def stop(**_kwargs) -> None:
    heartbeat.stop_heartbeat()
