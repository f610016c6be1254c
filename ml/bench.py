"""Model-only benchmark: batch-1 latency and batch-N throughput (32 by default) per runtime, side by side."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from ml.predictor import Predictor

TITLES = {"keras": "Keras model.predict", "tensorflow": "TensorFlow tf.function", "jax": "Keras on JAX, XLA jit",
          "litert": "LiteRT"}
MARK_BEGIN, MARK_END = "<!-- bench:model:begin -->", "<!-- bench:model:end -->"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def measure(run, batch: np.ndarray, seconds: float) -> list[float]:
    run(batch)  # warm up (allocation, tracing)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return times


def main(args) -> int:
    threads = os.cpu_count() or 1
    rows = []
    for runtime in args.runtimes.split(","):
        title = TITLES[runtime]
        predictor = Predictor(args.bundle, runtime=runtime, threads=threads, max_batch=args.batch)
        size = predictor.img_size
        rng = np.random.default_rng(0)
        batch = rng.uniform(-1, 1, (args.batch, size, size, 3)).astype(np.float32)
        rows.append(_row(title, predictor._run, batch, args.seconds))
        if predictor.fast_path:  # random inputs say nothing of how many photos the float model sees again
            rows.append(_row("LiteRT int8 (the fast path's first pass)", predictor.fast_arrays, batch, args.seconds))
        print(f"{rows[-1][0]:<26} batch 1: {rows[-1][1]:7.1f} ms   batch {args.batch}: {rows[-1][3]:7.1f} img/s",
              flush=True)
    write_doc(Path(args.doc), predictor, rows, args.batch)
    return 0


def _row(title: str, run, batch: np.ndarray, seconds: float):
    one = measure(run, batch[:1], seconds / 2)
    many = measure(run, batch, seconds)
    return (title, 1000 * float(np.median(one)), 1000 * float(np.percentile(one, 95)),
            len(batch) / float(np.median(many)))


def write_doc(path: Path, predictor: Predictor, rows: list, batch: int = 32) -> None:
    size = predictor.img_size
    table = [
        MARK_BEGIN,
        "## Model only (`python -m ml bench`)",
        "",
        f"Bundle `{predictor.version}` ({predictor.info.arch}, {size}×{size}); machine: {machine()}; "
        f"{os.cpu_count()} intra-op threads; median of repeated runs on random inputs; load average "
        f"{os.getloadavg()[0]:.1f} when it finished (other jobs on the machine slow every row alike).",
        "",
        f"| runtime | batch 1 latency p50 (ms) | batch 1 p95 (ms) | batch {batch} throughput (images/s) |",
        "|---|---|---|---|",
        *[f"| {t} | {p50:.1f} | {p95:.1f} | {ips:.0f} |" for t, p50, p95, ips in rows],
        "",
        "ONNX Runtime: not measured (no TensorFlow→ONNX converter is installed; optional in the issue).",
        MARK_END,
    ]
    text = path.read_text() if path.exists() else "# Performance\n\n"
    if MARK_BEGIN in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + "\n".join(table) + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(table) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"written to {path}")
