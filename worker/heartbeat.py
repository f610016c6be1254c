"""Each worker process's sign of life: a ``WorkerHeartbeat`` row refreshed by a daemon thread.

The row says which queues the process consumes, which model version it serves and how many
tasks it has run; /readyz, /metrics and ``flask ops stats`` count the fresh ones
(webapp/observability/). It starts in every process that runs tasks, after its model loaded, and
its row is deleted when the process shuts down (worker/signals.py). Rows of processes killed without a
goodbye go stale and are
swept by the survivors' ticks. A database outage is logged and retried at the next tick.
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from webapp.extensions import db
from webapp.models import WorkerHeartbeat, utcnow
from worker.engine import loaded_runtime, loaded_version, worker_name

log = logging.getLogger(__name__)
STALE_SWEEP_FACTOR = 10  # heartbeat rows older than 10 × WORKER_STALE_S are deleted


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
        with self.app.app_context():
            row = db.session.get(WorkerHeartbeat, self.name) or WorkerHeartbeat(name=self.name)
            row.queues, row.started_at, row.seen_at = self.queues, self.started_at, utcnow()
            row.model_version, row.runtime, row.processed = loaded_version(), loaded_runtime(), self.processed
            db.session.add(row)
            db.session.commit()
            sweep_stale_heartbeats()

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


def sweep_stale_heartbeats(now: datetime | None = None) -> int:
    """Delete rows of workers silent for STALE_SWEEP_FACTOR × WORKER_STALE_S (killed without goodbye)."""
    cutoff = (now or utcnow()) - timedelta(seconds=STALE_SWEEP_FACTOR * current_app.config["WORKER_STALE_S"])
    result: Any = db.session.execute(db.delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < cutoff))
    db.session.commit()
    return result.rowcount


# --- one heartbeat per process, started and stopped by worker/signals.py --------------------------------

_current: Heartbeat | None = None
_current_pid: int | None = None
_guard = threading.Lock()


def start_heartbeat(app: Flask, queues: list[str]) -> Heartbeat:
    """This process's heartbeat, started on the first call (later calls return the same one)."""
    global _current, _current_pid
    with _guard:
        if _current is None or _current_pid != os.getpid():  # a forked child starts its own
            _current = Heartbeat(app, worker_name(), queues, float(app.config["HEARTBEAT_INTERVAL_S"])).start()
            _current_pid = os.getpid()
        return _current


def count_task() -> None:
    if _current is not None and _current_pid == os.getpid():
        _current.task_done()


def stop_heartbeat() -> None:
    global _current
    with _guard:
        heartbeat, _current = (_current, None) if _current_pid == os.getpid() else (None, _current)
    if heartbeat is not None:
        heartbeat.stop()
