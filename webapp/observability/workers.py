"""Live worker processes, from the heartbeat rows they write (worker/heartbeat.py)."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from webapp.extensions import db
from webapp.models import WorkerHeartbeat, utcnow


def live_workers(now: datetime | None = None) -> list[WorkerHeartbeat]:
    """Worker processes whose heartbeat is younger than WORKER_STALE_S."""
    fresh = (now or utcnow()) - timedelta(seconds=current_app.config["WORKER_STALE_S"])
    return list(db.session.scalars(db.select(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= fresh)
                                   .order_by(WorkerHeartbeat.name)))


def worker_queues(worker: WorkerHeartbeat) -> list[str]:
    return [q for q in worker.queues.split(",") if q]
