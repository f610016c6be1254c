"""/readyz: the database and the broker answer (and, when asked, a live inference worker)."""
from __future__ import annotations

import logging

from webapp.extensions import db, discard_session
from webapp.observability.broker import check_broker, queue_names
from webapp.observability.workers import live_workers, worker_queues

log = logging.getLogger(__name__)


def readiness(require_worker: bool) -> tuple[int, dict]:
    """(HTTP status, body): 200 when the database and the broker answer (and, if required, a worker lives)."""
    body: dict = {"database": "ok", "broker": "ok", "workers": None}
    failed = []
    try:
        db.session.execute(db.text("SELECT 1"))
        workers = live_workers()
        body["workers"] = {
            "live": len(workers),
            "queues": {name: sum(name in worker_queues(w) for w in workers) for name in queue_names()},
            "model_versions": _count(w.model_version for w in workers if w.model_version),
        }
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
        discard_session()
        body["database"] = "unreachable"
        failed.append("database")
    try:
        check_broker()
    except Exception as exc:
        log.warning("readiness: broker unreachable: %s", exc)
        body["broker"] = "unreachable"
        failed.append("broker")
    if require_worker and body["workers"] is not None and not body["workers"]["queues"].get("inference"):
        failed.append("workers")
    body.update(status="unavailable" if failed else "ready", failed=failed)
    return (503 if failed else 200), body


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
