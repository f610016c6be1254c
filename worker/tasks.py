"""Celery tasks. ``recognize`` turns a queued upload into a stored result."""
from __future__ import annotations

import logging
import time

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError, OperationalError

from ml import images
from webapp.extensions import db
from webapp.models import Landmark, Recognition, utcnow
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
        db.session.rollback()
        if is_transient(exc) and self.request.retries < self.max_retries:
            log.warning("recognition %s: database unavailable, retrying (%s)", recognition_id, exc)
            raise self.retry(exc=exc, countdown=min(30, 0.5 * 2**self.request.retries))
        log.exception("recognition %s failed", recognition_id)
        mark_failed(recognition_id, "the recogniser had an internal error; please try again")
        return "failed"


def run_recognition(recognition_id: str) -> str | None:
    rec = db.session.get(Recognition, recognition_id)
    if rec is None:
        log.warning("recognition %s does not exist", recognition_id)
        return None
    if rec.finished:  # a redelivered message: the result is already written once
        return rec.status
    rec.status, rec.started_at, rec.attempts = "running", utcnow(), rec.attempts + 1
    db.session.commit()

    started = time.perf_counter()
    try:
        decoded = images.decode(
            original_path(rec),
            max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
            allowed_formats=images.UPLOAD_FORMATS,
        )
    except images.ImageError as err:
        return finish(rec, "failed", error=visitor_reason(err))
    decoded_at = time.perf_counter()
    predictor = get_predictor()
    prediction = predictor.predict([decoded.image])[0]
    rec.decode_ms = (decoded_at - started) * 1000
    rec.inference_ms = (time.perf_counter() - decoded_at) * 1000
    rec.label = prediction.label
    rec.confidence = float(prediction.score)
    rec.top5 = [[key, float(prob)] for key, prob in prediction.top5]
    rec.model_version = predictor.version
    rec.landmark = (
        db.session.scalars(db.select(Landmark).filter_by(class_key=prediction.label)).first()
        if prediction.label
        else None
    )
    return finish(rec, "done")


def finish(rec: Recognition, status: str, error: str | None = None) -> str:
    rec.status, rec.error, rec.finished_at = status, error, utcnow()
    db.session.commit()
    log.info("recognition %s %s: label=%s confidence=%s", rec.id, status, rec.label, rec.confidence)
    return status


def mark_failed(recognition_id: str, error: str) -> None:
    try:
        rec = db.session.get(Recognition, recognition_id)
        if rec is not None and not rec.finished:
            finish(rec, "failed", error=error)
    except Exception:  # the database itself is gone: the sweeper (issue 6) will find the row
        db.session.rollback()
        log.exception("could not mark recognition %s failed", recognition_id)

