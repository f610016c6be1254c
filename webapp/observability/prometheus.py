"""/metrics: a prometheus_client collector that reads the database and the broker at scrape time."""
from __future__ import annotations

import logging

from flask import current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from webapp.models import utcnow
from webapp.observability.broker import queue_depths, queue_names
from webapp.observability.recognitions import finished_counts, status_counts, window_histograms, window_start
from webapp.observability.versions import active_model
from webapp.observability.workers import live_workers, worker_queues

log = logging.getLogger(__name__)


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
