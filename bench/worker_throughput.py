"""Benchmark 2: worker throughput, naive vs ours, on the same queue and photos, in one run.

    .venv/bin/python bench/worker_throughput.py [--photos 800] [--out docs/performance.md]
    python bench/worker_throughput.py --gpu --embedded   # on a GPU host: naive vs ours with the JAX runtime

Both workers are real Celery worker processes running the real ``recognize`` task against Redis and
PostgreSQL (``--database``/``--broker``; the embedded defaults with ``--embedded``):

  naive   Keras ``model.predict`` per task, one task at a time (``--pool solo``, batch 1)
  ours    LiteRT, micro-batching: ``--pool threads`` with N task threads feeding one batch thread
          (``worker/batching.py``), all cores for the model
  ours, prefork   LiteRT, one process per core, one model thread each (batches of one)
  ours, N processes   one threads-pool process per core, one model thread each: batches and parallel Python

"ours" serves the bundle's int8 fast path (``ml/fastpath.py``; the float model decides the unclear photos) and
writes claims and results for many tasks at once (``worker/recorder.py``); the last kind turns the fast
path off to show what it adds.

With ``--gpu`` the same comparison runs on the GPU through Keras's JAX backend (XLA): the naive worker is
Keras ``predict`` per task there too; ours is one threads-pool process per GPU with batches of up to 64,
and several such processes sharing the GPU (Python's per-task work, not the GPU, limits one process).

For each, N uploads are queued while no worker runs; then the worker starts, and throughput is
measured from the first recognition started to the last one stored (model loading excluded).
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from factories import sample_photos  # noqa: E402
from live_stack import Stack  # noqa: E402

CORES = os.cpu_count() or 1
WORKERS = {
    "naive": dict(pool="solo", concurrency=1, INFERENCE_RUNTIME="keras", INFERENCE_MAX_BATCH="1",
                  INFERENCE_THREADS=str(CORES)),
    "ours": dict(pool="threads", concurrency=32, INFERENCE_RUNTIME="litert", INFERENCE_MAX_BATCH="32",
                 INFERENCE_THREADS=str(CORES)),
    "ours, prefork": dict(pool="prefork", concurrency=CORES, INFERENCE_RUNTIME="litert", INFERENCE_THREADS="1"),
    f"ours, {CORES} processes": dict(processes=CORES, pool="threads", concurrency=8, INFERENCE_RUNTIME="litert",
                                     INFERENCE_MAX_BATCH="32", INFERENCE_THREADS="1"),
    f"ours, {CORES} processes, float model only": dict(processes=CORES, pool="threads", concurrency=8,
                                                       INFERENCE_RUNTIME="litert", INFERENCE_MAX_BATCH="32",
                                                       INFERENCE_THREADS="1", INFERENCE_FAST_PATH="0"),
}

GPU = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "KERAS_BACKEND": "jax"}
GPU_WORKERS = {
    "naive, GPU": dict(pool="solo", concurrency=1, INFERENCE_RUNTIME="keras", INFERENCE_MAX_BATCH="1", **GPU),
    "ours, GPU": dict(pool="threads", concurrency=64, INFERENCE_RUNTIME="jax", INFERENCE_MAX_BATCH="64", **GPU),
    "ours, GPU, 4 processes": dict(processes=4, pool="threads", concurrency=32, INFERENCE_RUNTIME="jax",
                                   INFERENCE_MAX_BATCH="32", **GPU),
}


def measure(kind: str, args, photos: list[bytes]) -> dict:
    from webapp.extensions import db
    from webapp.models import Recognition

    tmp = Path(tempfile.mkdtemp(prefix=f"throughput-{kind.replace(' ', '').replace(',', '-')}-"))
    stack = Stack(tmp, *(() if args.embedded else (None if args.database == "sqlite" else args.database, args.broker)))
    stack.prepare()
    ids = [stack.upload(photos[i % len(photos)]) for i in range(args.photos)]
    settings = dict((GPU_WORKERS if args.gpu else WORKERS)[kind])
    processes, concurrency, pool = settings.pop("processes", 1), settings.pop("concurrency"), settings.pop("pool")
    for _ in range(processes):
        stack.start_worker(concurrency, pool, **settings)
    try:
        deadline = time.monotonic() + args.timeout
        with stack.app.app_context():
            while time.monotonic() < deadline:
                db.session.expire_all()
                rows = db.session.execute(db.select(Recognition.status, Recognition.started_at,
                                                    Recognition.finished_at, Recognition.batch_size,
                                                    Recognition.inference_ms)
                                          .where(Recognition.id.in_(ids))).all()
                if all(r.status in ("done", "failed") for r in rows):
                    break
                assert all(w.poll() is None for w in stack.workers), stack.log.read_text()[-3000:]
                time.sleep(0.5)
    finally:
        stack.stop()
    done = [r for r in rows if r.status == "done"]
    if not done:
        raise SystemExit(f"{kind}: no recognition finished; the worker's log: {stack.log}")
    span = (max(r.finished_at for r in done) - min(r.started_at for r in done)).total_seconds()
    batches = [r.batch_size or 1 for r in done]
    return {"kind": kind, "done": len(done), "failed": sum(r.status == "failed" for r in rows),
            "unfinished": len(ids) - len(rows) + sum(r.status not in ("done", "failed") for r in rows),
            "seconds": span, "per_second": len(done) / span if span else 0.0,
            "mean_batch": sum(batches) / len(batches), "max_batch": max(batches),
            "model_ms_per_image": sum(r.inference_ms / (r.batch_size or 1) for r in done) / len(done)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=800)
    ap.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test",
                    help="a database URL, or 'sqlite' for a fresh SQLite file per worker kind")
    ap.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--embedded", action="store_true", help="SQLite and the embedded broker instead")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--gpu", action="store_true", help="the GPU comparison (Keras on JAX) instead of the CPU one")
    ap.add_argument("--out", type=Path, default=None, help="append a Markdown summary here")
    ap.add_argument("--kinds", help="worker kinds to run, separated by semicolons (default: all; the ratio needs naive)")
    args = ap.parse_args()
    # workers run in their own sessions: on SIGTERM (a timeout) unwind, so each Stack stops its workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    photos = [p.read_bytes() if isinstance(p, Path) else p for p, _ in sample_photos(per_class=5, classes=20)]
    kinds = GPU_WORKERS if args.gpu else WORKERS
    if args.kinds:
        kinds = {k: kinds[k] for k in args.kinds.split(";")}
    results = []
    for kind in kinds:  # each printed as it is measured: a run cut short still tells what it measured
        results.append(measure(kind, args, photos))
        print(results[-1], flush=True)
    lines = [f"| {r['kind']} | {r['done']} | {r['failed']} | {r['unfinished']} | {r['seconds']:.1f} | "
             f"{r['per_second']:.1f} | {r['mean_batch']:.1f} / {r['max_batch']} | {r['model_ms_per_image']:.1f} |"
             for r in results]
    naive = [r["per_second"] for r in results if r["kind"].startswith("naive")]
    ours = [r["per_second"] for r in results if not r["kind"].startswith("naive")]
    ratio = [f"best of ours / naive: **{max(ours) / naive[0]:.1f}×**"] if naive and ours else []
    table = ["| worker | done | failed | unfinished | seconds | photos/s | batch mean / max | model ms per photo |",
             "|---|---|---|---|---|---|---|---|", *lines, "", *ratio]
    print("\n".join(table))
    if args.out:
        cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
        where = ("SQLite + embedded broker" if args.embedded else
                 f"database {args.database.split(':')[0]}, broker {args.broker.split(':')[0]}")
        if args.gpu:
            gpu = subprocess.run(["sh", "-c", "nvidia-smi --query-gpu=name --format=csv,noheader"],
                                 capture_output=True, text=True).stdout.strip().replace("\n", ", ")
            cpu = f"{cpu}; GPU: {gpu or 'none found'}"
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Worker throughput (bench/worker_throughput.py), {time.strftime('%Y-%m-%d %H:%M')} UTC\n\n"
                     f"{CORES} CPUs ({cpu}), Python {platform.python_version()}, {where}, {args.photos} queued "
                     f"photos (real 20-landmark photos), shipped model. "
                     + "; ".join(f"{kind}: {settings}" for kind, settings in kinds.items())
                     + ".\n\n" + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
