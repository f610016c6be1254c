"""What operators see: readiness, Prometheus metrics and ``flask ops stats``, from shared state only.

Everything is read at request time from the database (recognitions, worker heartbeats, model
versions) and the broker (queue lengths), so every web process reports the same truth and no
multiprocess directory is needed. One module per source, each query once:

- ``recognitions`` — counts, throughput and the windowed histograms (``histograms``, ``sql``);
- ``workers`` — live workers from their heartbeats (written by worker/heartbeat.py);
- ``versions`` — the model version workers should serve;
- ``broker`` — reachability and queue lengths;
- ``readiness`` (/readyz), ``prometheus`` (/metrics; webapp/views/ops.py), ``report`` (``flask ops stats``).

Metric names and what to alert on: docs/operations.md.
"""
