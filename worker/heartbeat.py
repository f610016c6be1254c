"""Each worker process's sign of life: a ``WorkerHeartbeat`` row refreshed by a daemon thread.

The row says which queues the process consumes, which model version it serves and how many
tasks it has run; /readyz, /metrics and ``flask ops stats`` count the fresh ones
(webapp/observability.py). It starts in every prefork child (``worker_process_init``) or, for
the solo/threads pools, in the worker itself (``worker_ready``), once per process, and the row is
deleted when the process shuts down. Rows of processes killed without a goodbye go stale and are
swept by the survivors' ticks. A database outage is logged and retried at the next tick.
"""
from __future__ import annotations

import logging
import os
import threading

from celery.signals import task_postrun, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown
from flask import Flask

from webapp import observability
from webapp.extensions import db
from webapp.models import WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, app: Flask, name: str, queues: list[str], interval: float):
        self.app = app
        self.name = name
        self.queues = ",".join(queues)
        self.interval = interval
        self.started_at = utcnow()
        self.processed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def task_done(self) -> None:
        with self._lock:
            self.processed += 1

    def beat(self) -> None:
        """Write this process's row now and sweep long-dead ones; raises if the database fails."""
        from worker.model import loaded_runtime, loaded_version

        with self.app.app_context():
            row = db.session.get(WorkerHeartbeat, self.name) or WorkerHeartbeat(name=self.name)
            row.queues, row.started_at, row.seen_at = self.queues, self.started_at, utcnow()
            row.model_version, row.runtime, row.processed = loaded_version(), loaded_runtime(), self.processed
            db.session.add(row)
            db.session.commit()
            observability.sweep_stale_heartbeats()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception as exc:  # never take the worker down: the next tick tries again
                log.warning("heartbeat of %s not written (retrying in %.0f s): %s", self.name, self.interval, exc)
            self._stop.wait(self.interval)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and delete the row (the worker leaves cleanly; failures are only logged)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            with self.app.app_context():
                db.session.execute(db.delete(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name))
                db.session.commit()
        except Exception as exc:
            log.warning("heartbeat row of %s not removed (it goes stale): %s", self.name, exc)


# --- one heartbeat per process, started and stopped by Celery's signals -----------------------------

_current: Heartbeat | None = None
_current_pid: int | None = None
_guard = threading.Lock()


def start_heartbeat() -> Heartbeat:
    """This process's heartbeat, started on the first call (later calls return the same one)."""
    global _current, _current_pid
    from worker.main import celery_app, flask_app
    from worker.model import worker_name

    with _guard:
        if _current is None or _current_pid != os.getpid():  # a forked child starts its own
            queues = sorted(celery_app.amqp.queues.consume_from)  # what -Q selected
            _current = Heartbeat(flask_app, worker_name(), queues,
                                 float(flask_app.config["HEARTBEAT_INTERVAL_S"])).start()
            _current_pid = os.getpid()
        return _current


def stop_heartbeat() -> None:
    global _current
    with _guard:
        heartbeat, _current = (_current, None) if _current_pid == os.getpid() else (None, _current)
    if heartbeat is not None:
        heartbeat.stop()


@worker_process_init.connect  # a prefork child, after worker.model loaded the model; the solo pool
def _start_in_pool_process(**_kwargs) -> None:
    start_heartbeat()


@worker_ready.connect  # the worker process itself runs tasks (threads, solo, gevent pools)
def _start_in_worker(sender=None, **_kwargs) -> None:
    from celery.concurrency.prefork import TaskPool as PreforkPool

    if not isinstance(getattr(sender, "pool", None), PreforkPool):  # prefork: each child has its own
        start_heartbeat()


@task_postrun.connect
def _count_task(**_kwargs) -> None:
    if _current is not None and _current_pid == os.getpid():
        _current.task_done()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _stop(**_kwargs) -> None:
    stop_heartbeat()
