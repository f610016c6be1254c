"""Keeping the promise that nothing is lost, and that nothing is kept too long.

``sweep`` finds recognitions stuck in ``queued`` or ``running`` (a message lost with a broker
restart, a worker killed mid-task: at once when its heartbeat is stale) and sends them again; after
``SWEEP_MAX_REQUEUES`` tries they end ``failed`` with a reason; it also re-sends the embedding of
reference photos still without one (their message was lost). ``purge`` deletes uploads older than
``RETENTION_DAYS``. Both run as Celery
beat tasks on the ``maintenance`` queue (``worker.tasks.sweep`` / ``purge``) and by hand as
``flask ops sweep`` / ``flask ops purge``. The web side only: tasks are sent by name.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func

from config import EMBED_TASK
from webapp.extensions import db
from webapp.models import Album, Recognition, ReferencePhoto, WorkerHeartbeat, finish_once, utcnow
from webapp.storage import upload_dir
from webapp.uploads import recognize_task, remove_files

log = logging.getLogger(__name__)
SWEEP_BATCH = 500
GAVE_UP = "the recogniser did not finish this photo in time; please try again"


def sweep(now: datetime | None = None) -> dict:
    now = now or utcnow()
    cutoff = now - timedelta(seconds=current_app.config["RECOGNITION_TIMEOUT_S"])
    max_requeues = current_app.config["SWEEP_MAX_REQUEUES"]
    timed_out = db.and_(Recognition.status.in_(("queued", "running")),
                        func.coalesce(Recognition.enqueued_at, Recognition.created_at) < cutoff)
    stuck = db.session.scalars(
        db.select(Recognition)
        .where(db.or_(timed_out, orphaned(now)))
        .order_by(Recognition.created_at)
        .limit(SWEEP_BATCH)
    ).all()
    requeued, failed = [], []
    for rec in stuck:
        if rec.requeues >= max_requeues:
            if finish_once(rec.id, "failed", error=GAVE_UP):
                failed.append(rec.id)
            continue
        rec.requeues += 1
        rec.enqueued_at = now
        requeued.append((rec.id, recognize_task(rec)))  # an album's photo goes back to the album queue
    db.session.commit()  # recorded before sending: a crash here loses nothing, the next sweep resends
    celery = current_app.extensions["celery"]
    for rec_id, task in requeued:
        celery.send_task(task, args=[rec_id])
    if requeued or failed:
        log.warning("sweep: re-enqueued %d stuck recognitions, failed %d after %d tries",
                    len(requeued), len(failed), max_requeues)
    unembedded = db.session.scalar(
        db.select(func.count()).select_from(ReferencePhoto)
        .where(ReferencePhoto.embedding.is_(None), ReferencePhoto.error.is_(None), ReferencePhoto.created_at < cutoff))
    if unembedded:
        celery.send_task(EMBED_TASK, args=[None])  # every photo without an embedding of the active model
        log.warning("sweep: %d reference photos still have no embedding; embedding task sent again", unembedded)
    return {"requeued": len(requeued), "failed": len(failed), "reference_photos": unembedded}


def orphaned(now: datetime):
    """Running recognitions whose claiming worker has gone silent (no heartbeat for WORKER_STALE_S, e.g.
    SIGKILLed): sent again at the next sweep instead of after RECOGNITION_TIMEOUT_S. A claim younger than
    WORKER_STALE_S is left alone (its worker may not have written its first heartbeat yet)."""
    stale = now - timedelta(seconds=current_app.config["WORKER_STALE_S"])
    alive = db.select(WorkerHeartbeat.name).where(WorkerHeartbeat.seen_at >= stale)
    return db.and_(Recognition.status == "running", Recognition.worker.is_not(None),
                   Recognition.worker.not_in(alive), Recognition.started_at < stale,
                   func.coalesce(Recognition.enqueued_at, Recognition.created_at) < stale)


def purge(now: datetime | None = None) -> dict:
    """Delete recognitions (rows and files) older than RETENTION_DAYS, albums' photos like single ones, then
    the albums that are left empty, and any older stray file.

    A visitor's correction still waiting for an editor is kept until it is reviewed: accepting it
    needs the photo (and its album stays until then)."""
    days = current_app.config["RETENTION_DAYS"]
    if days <= 0:
        return {"deleted": 0, "files": 0, "albums": 0}
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    not_awaiting_review = db.or_(Recognition.review_status.is_(None), Recognition.review_status != "pending")
    awaiting = set(db.session.scalars(db.select(Recognition.stored_name).where(~not_awaiting_review)))
    deleted = 0
    while True:
        old = db.session.scalars(
            db.select(Recognition).where(Recognition.created_at < cutoff, not_awaiting_review).limit(SWEEP_BATCH)
        ).all()
        if not old:
            break
        for rec in old:
            remove_files(rec)
            db.session.delete(rec)
        db.session.commit()
        deleted += len(old)
    has_photos = db.select(Recognition.id).where(Recognition.album_id == Album.id).exists()
    result: Any = db.session.execute(  # a CursorResult: SQLAlchemy types execute() as the general Result
        db.delete(Album).where(Album.created_at < cutoff, ~has_photos))
    albums = result.rowcount
    db.session.commit()
    stray = 0  # files whose row never got written (an upload refused while the database was down)
    for path in upload_dir().iterdir():
        if path.is_file() and path.stem not in awaiting and path.stat().st_mtime < cutoff.timestamp():
            path.unlink(missing_ok=True)
            stray += 1
    if deleted or stray or albums:
        log.info("purge: deleted %d recognitions, %d empty albums and %d stray files older than %d days",
                 deleted, albums, stray, days)
    return {"deleted": deleted, "files": stray, "albums": albums}
