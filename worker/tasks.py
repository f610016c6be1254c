"""Celery tasks. ``recognize`` turns a queued upload into a stored result."""
from __future__ import annotations

import logging
import time

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError, OperationalError

from ml import images
from webapp import maintenance
from webapp.extensions import db
from webapp.models import Landmark, Recognition, claim, finish_once
from webapp.uploads import original_path, visitor_reason
from worker.model import get_predictor

log = logging.getLogger(__name__)

# Connection drops, restarts and lock timeouts heal by themselves; retry with back-off.
TRANSIENT_DB_ERRORS = (OperationalError,)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_DB_ERRORS) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


@shared_task(
    name="worker.tasks.recognize",
    bind=True,
    acks_late=True,  # a task is removed from the queue only once it has finished...
    reject_on_worker_lost=True,  # ...and goes back to it if its process dies mid-way
    max_retries=8,
)
def recognize(self, recognition_id: str) -> str | None:
    """Recognise one upload; safe to run twice (a finished recognition is left alone)."""
    try:
        return run_recognition(recognition_id)
    except Exception as exc:
        discard_session()
        if is_transient(exc) and self.request.retries < self.max_retries:
            log.warning("recognition %s: database unavailable, retrying (%s)", recognition_id, exc)
            raise self.retry(exc=exc, countdown=min(30, 0.5 * 2**self.request.retries))
        log.exception("recognition %s failed", recognition_id)
        mark_failed(recognition_id, "the recogniser had an internal error; please try again")
        return "failed"


def discard_session() -> None:
    """Roll back; on a connection that died with the database, the rollback itself fails: drop the session."""
    try:
        db.session.rollback()
    except Exception:
        db.session.registry.clear()


def run_recognition(recognition_id: str) -> str | None:
    rec = db.session.get(Recognition, recognition_id)
    if rec is None:
        log.warning("recognition %s does not exist", recognition_id)
        return None
    if rec.finished or not claim(recognition_id):  # a redelivered message: the result is already written
        return current_status(recognition_id)

    started = time.perf_counter()
    try:
        decoded = images.decode(
            original_path(rec),
            max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
            allowed_formats=images.UPLOAD_FORMATS,
        )
    except images.ImageError as err:
        return finish(recognition_id, "failed", error=visitor_reason(err))
    decoded_at = time.perf_counter()
    predictor = get_predictor()
    prediction = predictor.predict([decoded.image])[0]
    landmark = (
        db.session.scalars(db.select(Landmark).filter_by(class_key=prediction.label)).first()
        if prediction.label
        else None
    )
    return finish(
        recognition_id,
        "done",
        label=prediction.label,
        confidence=float(prediction.score),
        top5=[[key, float(prob)] for key, prob in prediction.top5],
        model_version=predictor.version,
        landmark_id=landmark.id if landmark else None,
        decode_ms=(decoded_at - started) * 1000,
        inference_ms=(time.perf_counter() - decoded_at) * 1000,
    )


def finish(recognition_id: str, status: str, **values) -> str | None:
    if not finish_once(recognition_id, status, **values):
        log.info("recognition %s already finished; this run's result is dropped", recognition_id)
        return current_status(recognition_id)
    log.info("recognition %s %s: label=%s confidence=%s", recognition_id, status, values.get("label"),
             values.get("confidence"))
    return status


def current_status(recognition_id: str) -> str | None:
    db.session.expire_all()
    rec = db.session.get(Recognition, recognition_id)
    return rec.status if rec else None


def mark_failed(recognition_id: str, error: str) -> None:
    try:
        finish(recognition_id, "failed", error=error)
    except Exception:  # the database itself is gone: the sweeper will find the row
        discard_session()
        log.exception("could not mark recognition %s failed", recognition_id)


@shared_task(name="worker.tasks.sweep")
def sweep() -> dict:
    """Re-enqueue recognitions stuck in queued/running; fail them after SWEEP_MAX_REQUEUES (beat, maintenance)."""
    return maintenance.sweep()


@shared_task(name="worker.tasks.purge")
def purge() -> dict:
    """Delete uploads older than RETENTION_DAYS (beat, maintenance queue)."""
    return maintenance.purge()
