"""Celery tasks: ``recognize`` an upload (``recognize_album`` an album's photo), ``embed_references`` for
few-shot enrolment, ``train_model``, and the maintenance tasks ``sweep`` and ``purge``."""
from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from sqlalchemy.exc import DBAPIError, OperationalError

from config import EMBED_TASK, PURGE_TASK, RECOGNIZE_ALBUM_TASK, RECOGNIZE_TASK, SWEEP_TASK, TRAIN_TASK
from ml import images
from webapp import maintenance
from webapp.extensions import db, discard_session
from webapp.models import Recognition, ReferencePhoto, utcnow
from webapp.storage import decode_upload, model_input_file, original_file, reference_path, visitor_reason
from worker.engine import get_engine, worker_name
from worker.recorder import get_recorder

log = logging.getLogger(__name__)

# Connection drops, restarts and lock timeouts heal by themselves; retry with back-off.
TRANSIENT_DB_ERRORS = (OperationalError,)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_DB_ERRORS) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


@shared_task(
    name=RECOGNIZE_TASK,
    bind=True,
    acks_late=True,  # a task is removed from the queue only once it has finished...
    reject_on_worker_lost=True,  # ...and goes back to it if its process dies mid-way
    max_retries=8,
)
def recognize(self, recognition_id: str) -> str | None:
    """Recognise one upload; safe to run twice (a finished recognition is left alone)."""
    return recognize_or_fail(self, recognition_id)


@shared_task(name=RECOGNIZE_ALBUM_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=8)
def recognize_album(self, recognition_id: str) -> str | None:
    """``recognize`` for a photo of an album: the same work, sent to the ``inference-album`` queue (config.py),
    which inference workers consume beside ``inference`` in turn, so single photos never wait behind an album."""
    return recognize_or_fail(self, recognition_id)


def recognize_or_fail(task, recognition_id: str) -> str | None:
    try:
        return run_recognition(recognition_id)
    except Exception as exc:
        retry_if_transient(task, exc)
        log.exception("recognition %s failed", recognition_id)
        mark_failed(recognition_id, "the recogniser had an internal error; please try again")
        return "failed"


def retry_if_transient(task, exc: Exception) -> None:
    """Drop the failed session; on a transient database error, retry the task with back-off (raises Retry)."""
    discard_session()
    if is_transient(exc) and task.request.retries < task.max_retries:
        log.warning("%s: database unavailable, retrying (%s)", task.name, exc)
        raise task.retry(exc=exc, countdown=min(30, 0.5 * 2**task.request.retries))


def run_recognition(recognition_id: str) -> str | None:
    stored_name = get_recorder().claim(recognition_id)
    if stored_name is None:  # a redelivered message (the result is already written), or a deleted upload
        status = current_status(recognition_id)
        if status is None:
            log.warning("recognition %s does not exist", recognition_id)
        return status

    engine = get_engine()
    with engine.slot() as run:  # announced now, so a batch forming meanwhile waits for this image
        started = time.perf_counter()
        try:
            decoded = decode_upload(model_input_file(stored_name), draft_size=engine.decode_size)
        except images.ImageError as err:
            return finish(recognition_id, "failed", error=visitor_reason(err))
        # the copy the worker decodes has no metadata: where and when come from the original's EXIF
        info = images.read_info(original_file(stored_name))
        decode_ms = (time.perf_counter() - started) * 1000
        outcome = run(decoded.image, info.position)  # the position is evidence only: never stored
    return finish(
        recognition_id,
        "done",
        label=outcome.label,
        tier=outcome.tier,
        suggestions=outcome.suggestions,
        places=outcome.places,
        confidence=outcome.score,
        top5=outcome.top5,
        matched_by=outcome.matched_by,
        model_version=outcome.version,
        batch_size=outcome.batch_size,
        worker=worker_name(),
        landmark_id=engine.landmark_id(outcome.label),
        taken_at=info.taken_at,
        position=outcome.position,
        distance_km=outcome.distance_km,
        decode_ms=decode_ms,
        inference_ms=outcome.model_ms,
    )


def finish(recognition_id: str, status: str, **values) -> str | None:
    if not get_recorder().finish(recognition_id, status, **values):
        log.info("recognition %s already finished; this run's result is dropped", recognition_id)
        return current_status(recognition_id)
    log.info("recognition %s %s: %s label=%s confidence=%s", recognition_id, status, values.get("tier"),
             values.get("label"), values.get("confidence"))
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


@shared_task(name=EMBED_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=8)
def embed_references(self, photo_ids: list[int] | None = None) -> int:
    """Store the active model's embedding of reference photos: ``photo_ids``, or (None) every photo whose
    embedding is missing or from another model version (sent when a model version is activated)."""
    try:
        return run_embeddings(photo_ids)
    except Exception as exc:
        retry_if_transient(self, exc)
        raise


def run_embeddings(photo_ids: list[int] | None) -> int:
    engine = get_engine()
    engine.refresh(force=True)  # embed with the model active now, not the one seen a moment ago
    query = db.select(ReferencePhoto.id, ReferencePhoto.stored_name).order_by(ReferencePhoto.id)
    if photo_ids is None:
        query = query.where(db.or_(ReferencePhoto.embedding_version.is_(None),
                                   ReferencePhoto.embedding_version != engine.version))
    else:
        query = query.where(ReferencePhoto.id.in_(photo_ids))
    done = 0
    photo: Any  # a Row (id, stored_name): reference_path reads only stored_name
    for photo in db.session.execute(query).all():
        with engine.slot(reference=True) as run:
            try:
                decoded = decode_upload(reference_path(photo), draft_size=engine.decode_size)
            except (images.ImageError, OSError) as err:
                reason = visitor_reason(err) if isinstance(err, images.ImageError) else "the photo file is missing"
                store_embedding(photo.id, error=reason)
                continue
            outcome = run(decoded.image)
        assert outcome.signature is not None  # ml.serving.recognise signs every photo
        # an UPDATE, not the ORM: a photo an editor removed meanwhile is simply not there any more
        done += store_embedding(photo.id, embedding=outcome.signature.astype("float32").tobytes(),
                                embedding_version=outcome.version, embedded_at=utcnow(), error=None)
    engine.invalidate()  # this process serves the new embeddings from its next batch; others within MODEL_CHECK_S
    log.info("embedded %d reference photos with model %s", done, engine.version)
    return done


def store_embedding(photo_id: int, **values) -> int:
    result: Any = db.session.execute(  # a CursorResult: SQLAlchemy types execute() as the general Result
        db.update(ReferencePhoto).where(ReferencePhoto.id == photo_id).values(**values))
    written = result.rowcount
    db.session.commit()
    return written


@shared_task(name=TRAIN_TASK, acks_late=True)
def train_model(version_id: int) -> str:
    """Retrain on the base dataset plus every reference photo; registers the result (training queue)."""
    from worker.training import train

    return train(version_id)


@shared_task(name=SWEEP_TASK)
def sweep() -> dict:
    """Re-enqueue recognitions stuck in queued/running; fail them after SWEEP_MAX_REQUEUES (beat, maintenance)."""
    return maintenance.sweep()


@shared_task(name=PURGE_TASK)
def purge() -> dict:
    """Delete uploads older than RETENTION_DAYS (beat, maintenance queue)."""
    return maintenance.purge()
