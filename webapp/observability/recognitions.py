"""Recognitions: counts by status, what finished recently, and the windowed latency and batch histograms."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case

from webapp.extensions import db
from webapp.models import FINISHED, STATUSES, Recognition, utcnow
from webapp.observability.histograms import BATCH_BUCKETS, E2E_BUCKETS, STEP_BUCKETS, Histogram
from webapp.observability.sql import seconds_between

# SQL value and buckets of each windowed histogram (values are NULL where not measured)
HISTOGRAMS = {
    "e2e": (seconds_between(Recognition.finished_at, Recognition.created_at), E2E_BUCKETS),
    "model": (Recognition.inference_ms / 1000.0, STEP_BUCKETS),
    "decode": (Recognition.decode_ms / 1000.0, STEP_BUCKETS),
    "batch": (Recognition.batch_size, BATCH_BUCKETS),
}


def window_start(seconds: float | None = None, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(seconds=seconds or current_app.config["METRICS_WINDOW_S"])


def finished_since(since: datetime) -> list:
    """Recognitions finished at or after ``since``, found through the created_at index.

    A recognition ends (done, or failed by the sweeper) at most (SWEEP_MAX_REQUEUES + 1) ×
    RECOGNITION_TIMEOUT_S (+ sweeps) after it was created, so older rows need not be scanned.
    """
    config = current_app.config
    span = (config["SWEEP_MAX_REQUEUES"] + 1) * config["RECOGNITION_TIMEOUT_S"] + 2 * config["SWEEP_INTERVAL_S"]
    return [Recognition.created_at >= since - timedelta(seconds=span), Recognition.finished_at >= since]


def window_histograms(since: datetime) -> dict[str, Histogram]:
    """Latency (e2e, model, decode) and batch-size histograms of recognitions done since ``since``; one query."""
    columns = []
    for value, bounds in HISTOGRAMS.values():
        columns += [db.func.count(case((value <= bound, 1))) for bound in bounds]
        columns += [db.func.count(value), db.func.coalesce(db.func.sum(value), 0)]
    row = db.session.execute(db.select(*columns).where(Recognition.status == "done", *finished_since(since))).one()
    histograms, i = {}, 0
    for name, (_value, bounds) in HISTOGRAMS.items():
        n = len(bounds)
        histograms[name] = Histogram(bounds, list(row[i:i + n]), row[i + n], float(row[i + n + 1]))
        i += n + 2
    return histograms


def status_counts() -> dict[str, int]:
    """Recognition rows by status (all of them, until the purge deletes them)."""
    rows = db.session.execute(db.select(Recognition.status, db.func.count()).group_by(Recognition.status))
    return {status: 0 for status in STATUSES} | dict(rows.all())


def finished_counts(since: datetime) -> dict[str, int]:
    """Recognitions finished since ``since``, by outcome (done, failed)."""
    rows = db.session.execute(db.select(Recognition.status, db.func.count())
                              .where(Recognition.status.in_(FINISHED), *finished_since(since))
                              .group_by(Recognition.status))
    return {status: 0 for status in FINISHED} | dict(rows.all())


def finished_per_minute(minutes: int = 5, now: datetime | None = None) -> list[int]:
    """Recognitions finished in each of the last ``minutes`` whole minutes before ``now``, oldest first."""
    now = now or utcnow()
    edges = [now - timedelta(minutes=minutes - i) for i in range(minutes + 1)]
    columns = [db.func.count(case((db.and_(Recognition.finished_at >= lo, Recognition.finished_at < hi), 1)))
               for lo, hi in zip(edges, edges[1:], strict=False)]
    return list(db.session.execute(db.select(*columns).where(*finished_since(edges[0]))).one())
