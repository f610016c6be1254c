"""``flask ops stats``: queues, workers, throughput and latency as text for a terminal."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from webapp.models import utcnow
from webapp.observability.broker import queue_depths
from webapp.observability.recognitions import finished_counts, finished_per_minute, window_histograms, window_start
from webapp.observability.versions import active_model
from webapp.observability.workers import live_workers


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
        p = [cast(float, h.quantile(q)) for q in (0.5, 0.95, 0.99)]  # a histogram with a count has quantiles
        lines.append(f"{label}: p50 {_ms(p[0])}  p95 {_ms(p[1])}  p99 {_ms(p[2])}  mean {_ms(h.sum / h.count)}"
                     f"  ({h.count} done; percentiles estimated from the buckets)")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
