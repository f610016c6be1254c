"""What operators see: readiness, Prometheus metrics and ``flask ops stats``, from shared state only.

Everything is read at request time from the database (recognitions, worker heartbeats, model
versions) and the broker (queue lengths), so every web process reports the same truth and no
multiprocess directory is needed. Each query has one home here; /readyz, /metrics
(webapp/views/ops.py) and ``flask ops stats`` (webapp/cli.py) call the same functions.
Metric names and what to alert on: docs/operations.md.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from sqlalchemy import Float, case, column, create_engine, inspect, table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.functions import FunctionElement

from ml.bundle import SHIPPED
from webapp.extensions import db
from webapp.models import FINISHED, STATUSES, ModelVersion, Recognition, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 2.0  # a probe or a scrape never waits longer than this on the broker
STALE_SWEEP_FACTOR = 10  # heartbeat rows older than 10 × WORKER_STALE_S are deleted
INF = math.inf
# bucket upper bounds (seconds, or images for batches); +Inf is added
E2E_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60, 120, 300, 600)
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


# --- SQL that SQLite and PostgreSQL both answer -------------------------------------------------

class seconds_between(FunctionElement):  # noqa: N801  (used like an SQL function)
    """``later - earlier`` in seconds (floating point) for two timestamp columns."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between(element, compiler, **kw) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element, compiler, **kw) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@dataclass
class Histogram:
    bounds: tuple[float, ...]  # finite upper bounds, ascending
    cumulative: list[int]  # observations <= each bound
    count: int
    sum: float

    def buckets(self) -> list[tuple[str, int]]:
        """Prometheus ``le`` buckets, +Inf last."""
        return [(floatToGoString(b), n) for b, n in zip(self.bounds, self.cumulative)] + [("+Inf", self.count)]

    def quantile(self, q: float) -> float | None:
        """Estimated like PromQL's ``histogram_quantile``: linear inside the bucket holding the rank."""
        if not self.count:
            return None
        rank = q * self.count
        lower, below = 0.0, 0
        for bound, cumulative in zip(self.bounds, self.cumulative):
            if cumulative >= rank:
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower  # beyond the largest bound: that bound is all we know


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
               for lo, hi in zip(edges, edges[1:])]
    return list(db.session.execute(db.select(*columns).where(*finished_since(edges[0]))).one())


# --- workers (heartbeats written by worker/heartbeat.py) ------------------------------------------

def live_workers(now: datetime | None = None) -> list[WorkerHeartbeat]:
    """Worker processes whose heartbeat is younger than WORKER_STALE_S."""
    fresh = (now or utcnow()) - timedelta(seconds=current_app.config["WORKER_STALE_S"])
    return list(db.session.scalars(db.select(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= fresh)
                                   .order_by(WorkerHeartbeat.name)))


def worker_queues(worker: WorkerHeartbeat) -> list[str]:
    return [q for q in worker.queues.split(",") if q]


def sweep_stale_heartbeats(now: datetime | None = None) -> int:
    """Delete rows of workers silent for STALE_SWEEP_FACTOR × WORKER_STALE_S (killed without goodbye)."""
    cutoff = (now or utcnow()) - timedelta(seconds=STALE_SWEEP_FACTOR * current_app.config["WORKER_STALE_S"])
    deleted = db.session.execute(db.delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < cutoff)).rowcount
    db.session.commit()
    return deleted


# --- models -----------------------------------------------------------------------------------

def active_model() -> tuple[str | None, str]:
    """(version, source): the active ModelVersion row, else the configured (or shipped) bundle's."""
    version = db.session.scalar(db.select(ModelVersion.version)
                                .where(ModelVersion.is_active, ModelVersion.status == "ready"))
    if version:
        return version, "database"
    bundle = Path(current_app.config["MODEL_BUNDLE"] or SHIPPED)
    try:  # plain JSON: the web never loads an ML runtime
        return json.loads((bundle / "bundle.json").read_text())["version"], "bundle"
    except (OSError, ValueError, KeyError):
        log.warning("cannot read the model version from %s", bundle / "bundle.json")
        return None, "bundle"


# --- broker -----------------------------------------------------------------------------------

def queue_names() -> list[str]:
    """The queues the routes in CELERY name, the default queue first."""
    celery = current_app.config["CELERY"]
    names = [celery.get("task_default_queue", "celery")]
    names += [route["queue"] for route in celery.get("task_routes", {}).values() if "queue" in route]
    return list(dict.fromkeys(names))


def broker_url() -> str:
    return current_app.extensions["celery"].conf.broker_url


def is_redis(url: str) -> bool:
    return urlsplit(url).scheme in ("redis", "rediss")


def check_broker() -> None:
    """Connect to the broker once, within BROKER_TIMEOUT_S; raises if it cannot."""
    celery = current_app.extensions["celery"]
    # kombu hands transport options of the SQLAlchemy transport to create_engine: Redis's only
    options = {"socket_connect_timeout": BROKER_TIMEOUT_S, "socket_timeout": BROKER_TIMEOUT_S}
    with celery.connection_for_read(connect_timeout=BROKER_TIMEOUT_S,
                                    transport_options=options if is_redis(broker_url()) else None) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S)


def queue_depths() -> dict[str, int] | None:
    """Messages waiting per queue; None for a broker we cannot count (raises if the broker is down).

    Redis: ``LLEN`` of the queue's list (the app sends no priorities, so one list per queue).
    kombu's SQLAlchemy transport: its visible (not yet delivered) rows of ``kombu_message``.
    """
    url, names = broker_url(), queue_names()
    if is_redis(url):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S)
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.llen(name)
                return dict(zip(names, pipe.execute()))
        finally:
            client.close()
    if url.startswith("sqla+"):
        return _sqla_queue_depths(url.removeprefix("sqla+"), names)
    return None


_broker_engines: dict = {}


def _sqla_queue_depths(url: str, names: list[str]) -> dict[str, int]:
    options = current_app.extensions["celery"].conf.broker_transport_options or {}
    queues = table(options.get("queue_tablename", "kombu_queue"), column("id"), column("name"))
    messages = table(options.get("message_tablename", "kombu_message"), column("id"), column("queue_id"),
                     column("visible"))
    if url not in _broker_engines:  # NullPool: nothing shared across forks, SQLite opens cheaply
        connect_args = {"timeout": BROKER_TIMEOUT_S} if url.startswith("sqlite") else {}
        _broker_engines[url] = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    depths = {name: 0 for name in names}
    with _broker_engines[url].connect() as conn:
        if not inspect(conn).has_table(messages.name):  # nothing was ever sent
            return depths
        rows = conn.execute(db.select(queues.c.name, db.func.count(messages.c.id))
                            .join(messages, messages.c.queue_id == queues.c.id)
                            .where(queues.c.name.in_(names), messages.c.visible.is_(True))
                            .group_by(queues.c.name))
        depths.update(rows.all())
    return depths


# --- /readyz ----------------------------------------------------------------------------------

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
        _discard_session()
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


def _discard_session() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection is dead: drop the session
        db.session.registry.clear()


# --- /metrics ---------------------------------------------------------------------------------

class LandmarkCollector:
    """A prometheus_client collector that reads the database and the broker at scrape time."""

    def collect(self):
        now = utcnow()
        window = current_app.config["METRICS_WINDOW_S"]
        since = window_start(window, now)

        by_status = GaugeMetricFamily("landmark_recognitions", "Recognitions stored, by status.", labels=["status"])
        for status, n in status_counts().items():
            by_status.add_metric([status], n)
        yield by_status

        yield GaugeMetricFamily("landmark_metrics_window_seconds",
                                "The window the *_recent metrics and the histograms cover.", value=window)
        recent = GaugeMetricFamily("landmark_recognitions_finished_recent",
                                   "Recognitions finished within the window, by outcome.", labels=["status"])
        for status, n in finished_counts(since).items():
            recent.add_metric([status], n)
        yield recent

        histograms = window_histograms(since)
        for name, key, doc in (
            ("landmark_e2e_latency_seconds", "e2e", "Upload stored to result stored, recognitions done in the window."),
            ("landmark_model_latency_seconds", "model", "Model time of the batch each recognition ran in."),
            ("landmark_decode_latency_seconds", "decode", "Worker time to read and decode the photo."),
            ("landmark_batch_size", "batch", "Images in the model batch each recognition ran in."),
        ):
            histogram = histograms[key]
            yield HistogramMetricFamily(name, doc, buckets=histogram.buckets(), sum_value=histogram.sum)

        yield from self._broker()

        version, source = active_model()
        active = GaugeMetricFamily("landmark_active_model_info", "The model version workers should serve.",
                                   labels=["version", "source"])
        if version:
            active.add_metric([version, source], 1)
        yield active

        workers = live_workers(now)
        per_queue = GaugeMetricFamily("landmark_workers", "Live worker processes, by queue they consume.",
                                      labels=["queue"])
        for name in dict.fromkeys(queue_names() + [q for w in workers for q in worker_queues(w)]):
            per_queue.add_metric([name], sum(name in worker_queues(w) for w in workers))
        yield per_queue
        served = GaugeMetricFamily("landmark_worker_model_info", "Model version each live worker process serves.",
                                   labels=["worker", "version", "runtime"])
        processed = GaugeMetricFamily("landmark_worker_processed_tasks",
                                      "Tasks each live worker process has run since it started.", labels=["worker"])
        for w in workers:
            served.add_metric([w.name, w.model_version or "", w.runtime or ""], 1)
            processed.add_metric([w.name], w.processed)
        yield served
        yield processed

    def _broker(self):
        up = GaugeMetricFamily("landmark_broker_up", "1 when the queue lengths could be read from the broker.")
        try:
            depths = queue_depths()
        except Exception as exc:
            log.warning("metrics: cannot read queue lengths: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        if depths is None:  # a broker we do not know how to count: no samples rather than wrong ones
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("landmark_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        for name, n in depths.items():
            depth.add_metric([name], n)
        yield depth


def render_metrics() -> bytes:
    """The Prometheus text exposition; database errors propagate (the view answers 503)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LandmarkCollector())
    return generate_latest(registry)


# --- flask ops stats --------------------------------------------------------------------------

def stats_report(minutes: int = 5) -> str:
    """Queue depth, live workers, throughput and latency of the last ``minutes``, for a terminal."""
    now = utcnow()
    since = window_start(minutes * 60, now)
    lines = []
    try:
        depths = queue_depths()
        queue_text = ", ".join(f"{k} {v}" for k, v in depths.items()) if depths is not None else "unknown broker"
    except Exception as exc:
        queue_text = f"broker unreachable ({exc.__class__.__name__})"
    lines.append(f"Queues (messages waiting): {queue_text}")

    workers = live_workers(now)
    lines.append(f"Live workers: {len(workers)}")
    for w in workers:
        age = (now - _aware(w.seen_at)).total_seconds()
        lines.append(f"  {w.name}  queues {w.queues or '-'}  model {w.model_version or '(not loaded)'}"
                     f"  {w.runtime or '-'}  {w.processed} tasks  seen {age:.0f} s ago")
    version, source = active_model()
    lines.append(f"Active model: {version or 'unknown'} ({source})")

    per_minute = finished_per_minute(minutes, now)
    lines.append(f"Finished per minute (oldest first, last {minutes} min): {' '.join(map(str, per_minute))}")
    outcomes = finished_counts(since)
    total = sum(outcomes.values())
    ratio = f" ({100 * outcomes['failed'] / total:.1f} % failed)" if total else ""
    lines.append(f"Last {minutes} min: {outcomes['done']} done, {outcomes['failed']} failed{ratio}")
    histograms = window_histograms(since)
    for label, key in (("End-to-end latency", "e2e"), ("Model latency     ", "model")):
        h = histograms[key]
        if not h.count:
            lines.append(f"{label}: no recognitions done")
            continue
        p = [h.quantile(q) for q in (0.5, 0.95, 0.99)]
        lines.append(f"{label}: p50 {_ms(p[0])}  p95 {_ms(p[1])}  p99 {_ms(p[2])}  mean {_ms(h.sum / h.count)}"
                     f"  ({h.count} done; percentiles estimated from the buckets)")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
