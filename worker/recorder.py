"""Claims and results of recognitions, written for many task threads at once.

Under load dozens of task threads claim a recognition, or write its result, at the same moment (a
model batch finishes them together). A ``Recorder`` gathers what the waiting threads ask into one
statement and one commit per kind (``claim_many``, ``finish_many``), with no wait of its own: a lone
task runs its statement at once in its own thread, and whatever arrived while a statement ran goes
next, together (``worker.batching.Coalescer``).
"""
from __future__ import annotations

import threading

from flask import Flask, current_app

from webapp.models import claim_many, finish_many
from worker.batching import Coalescer
from worker.engine import worker_name

_recorder: Recorder | None = None
_recorder_lock = threading.Lock()


class Recorder:
    def __init__(self, app: Flask, max_batch: int = 64, worker: str | None = None):
        self.app = app
        self.worker = worker  # recorded with each claim: this process's heartbeat name
        self._claims = Coalescer(self._claim_batch, max_batch=max_batch)
        self._results = Coalescer(self._finish_batch, max_batch=max_batch)

    def claim(self, recognition_id: str) -> str | None:
        """The recognition's stored file name, now ``running``; None if it is finished or gone."""
        return self._claims(recognition_id)

    def finish(self, recognition_id: str, status: str, **values) -> bool:
        """Write the outcome unless one is already written; whether this one was."""
        return self._results((recognition_id, status, values))

    def _claim_batch(self, ids: list[str]) -> list[str | None]:
        with self.app.app_context():
            claimed = claim_many(ids, worker=self.worker)
        return [claimed.get(rid) for rid in ids]

    def _finish_batch(self, results: list[tuple[str, str, dict]]) -> list[bool]:
        with self.app.app_context():
            written = finish_many(results)
        return [rid in written for rid, _, _ in results]


def get_recorder() -> Recorder:
    """The process's recorder for the current app (tests build many apps in one process)."""
    global _recorder
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # current_app is a LocalProxy
    with _recorder_lock:
        if _recorder is None or _recorder.app is not app:
            _recorder = Recorder(app, worker=worker_name())
        return _recorder
