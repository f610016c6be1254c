"""Dynamic micro-batching inside one worker process (the TF Serving / Triton idea).

Task threads (Celery's ``threads`` pool) decode and preprocess their own image, then ``submit`` it
and wait; one batch thread owns the model and runs whatever is waiting as one batch. A lone request
never waits: the batch thread only lingers (up to ``max_wait_s``) while other tasks have announced
themselves with ``reserve`` and are still decoding, so batches fill under load and stay at one when
the queue is quiet.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


class MicroBatcher:
    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], *, max_batch: int = 32,
                 max_wait_s: float = 0.005, name: str = "model-batcher"):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._waiting: list[tuple[Any, Future]] = []
        self._coming = 0  # reserved slots: tasks that will submit soon
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @contextmanager
    def reserve(self) -> Iterator[Callable[[Any], Any]]:
        """Announce an item (while it is being prepared); yields ``submit(item) -> result``."""
        with self._cond:
            self._coming += 1
        pending = [True]

        def submit(item: Any) -> Any:
            future: Future = Future()
            with self._cond:
                if pending[0]:
                    self._coming -= 1
                    pending[0] = False
                self._waiting.append((item, future))
                self._cond.notify_all()
            return future.result()

        try:
            yield submit
        finally:
            with self._cond:
                if pending[0]:  # never submitted (the image could not be decoded)
                    self._coming -= 1
                    pending[0] = False
                    self._cond.notify_all()

    def __call__(self, item: Any) -> Any:
        with self.reserve() as submit:
            return submit(item)

    def _next_batch(self) -> list[tuple[Any, Future]]:
        with self._cond:
            while not self._waiting:
                self._cond.wait()
            deadline = time.monotonic() + self.max_wait_s
            while len(self._waiting) < self.max_batch and self._coming > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch:]
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                results = self.run_batch([item for item, _ in batch])
            except BaseException as exc:  # every waiting task gets the error; the thread lives on
                log.exception("batch of %d failed", len(batch))
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=False):
                future.set_result(result)


class Coalescer:
    """Concurrent calls gathered into batches that one of the calling threads runs (flat combining).

    A lone call runs at once, in its own thread: no hand-off, nothing to wait for (prefork and solo
    pools pay nothing). Calls that arrive while a batch runs wait; when it ends, one of them runs all
    that gathered meanwhile as the next batch, its own call included. Each thread runs at most the one
    batch that holds its own call, so none is kept working for the others.
    """

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], *, max_batch: int = 64):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[list] = []  # [item, done, result, error] per call
        self._running = False

    def __call__(self, item: Any) -> Any:
        call = [item, False, None, None]
        with self._cond:
            self._waiting.append(call)
            while self._running and not call[1]:
                self._cond.wait()
            if not call[1]:  # nobody ran it: this thread runs the next batch, its own call first
                self._running = True
                self._waiting.remove(call)
                batch = [call] + self._waiting[: self.max_batch - 1]
                del self._waiting[: self.max_batch - 1]
        if not call[1]:
            try:
                for each, result in zip(batch, self.run_batch([c[0] for c in batch]), strict=True):
                    each[2] = result
            except BaseException as exc:  # every call of the batch gets the error
                for each in batch:
                    each[3] = exc
            with self._cond:
                for each in batch:
                    each[1] = True
                self._running = False
                self._cond.notify_all()
        if call[3] is not None:
            raise call[3]
        return call[2]
