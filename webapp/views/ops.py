"""Operations endpoints: ``/readyz`` (may this instance take traffic?) and ``/metrics`` (Prometheus).

``/healthz`` (the process is up) stays in the API blueprint. Neither endpoint here is rate limited;
both are meant for probes and scrapers on the operators' network (docs/operations.md): nginx does not pass
them on (deploy/nginx.conf.template), and ``METRICS_TOKEN`` may also require a bearer token for /metrics.
"""
from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from webapp.observability.prometheus import render_metrics
from webapp.observability.readiness import readiness

bp = Blueprint("ops", __name__)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@bp.get("/readyz")
def readyz():
    """200 when the database and broker answer; ``?require_worker=1`` (or READY_REQUIRES_WORKER) adds a worker."""
    flag = request.args.get("require_worker", "").strip().lower()
    require_worker = True if flag in TRUE else False if flag in FALSE else current_app.config["READY_REQUIRES_WORKER"]
    status, body = readiness(require_worker)
    return jsonify(body), status, {"Cache-Control": "no-store"}


@bp.get("/metrics")
def metrics():
    """Prometheus text; with ``METRICS_TOKEN`` set, only for ``Authorization: Bearer <that token>``."""
    expected = current_app.config["METRICS_TOKEN"]
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return Response("a valid 'Authorization: Bearer <METRICS_TOKEN>' header is required\n", 401,
                            {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    try:
        payload = render_metrics()
    except SQLAlchemyError as exc:  # no numbers rather than wrong ones; Prometheus marks the target down
        current_app.logger.warning("metrics: database unavailable: %s", exc)
        return Response("database unavailable\n", 503, mimetype="text/plain")
    return Response(payload, 200, {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
