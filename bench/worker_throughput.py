"""Benchmark 2: worker throughput against the model's own ceiling, on the same queue and photos, in one run.

    .venv/bin/python bench/worker_throughput.py [--photos 800] [--photo-sets shared,phone-jpeg,phone-heic]
        [--profile 5] [--kinds "naive;ours;..."] [--out docs/performance.md]
    python bench/worker_throughput.py --gpu --embedded   # on a GPU host: naive vs ours with the JAX runtime

After each LiteRT worker kind, the model alone runs in child processes laid out as that worker was, with its
predictor settings, on the run's photos, at the batch sizes the worker ran (its results' ``batch_size``): the
ceiling. The table gives worker photos/s over ceiling images/s, and the same per CPU second (steady on a
shared machine, where wall-clock rates are not). ``--profile`` runs py-spy on the worker while it works and
shares its CPU per photo out by part (model, decoding, database, broker, Celery...). Phone-size photo sets
are made from the real photos (12 MP, a phone's EXIF) in a temporary directory at each run.

Both workers are real Celery worker processes running the real ``recognize`` task against Redis and
PostgreSQL (``--database``/``--broker``; the embedded defaults with ``--embedded``):

  naive   Keras ``model.predict`` per task, one task at a time (``--pool solo``, batch 1)
  ours    LiteRT, micro-batching: ``--pool threads`` with N task threads feeding one batch thread
          (``worker/batching.py``), all cores for the model
  ours, prefork   LiteRT, one process per core, one model thread each (batches of one)
  ours, N processes   one threads-pool process per core, one model thread each: batches and parallel Python

"ours" serves the bundle's int8 fast path (``ml/fastpath.py``; the float model decides the unclear photos) and
writes claims and results for many tasks at once (``worker/recorder.py``); the "float model only" kinds turn
the fast path off, "kombu's Redis transport" turns off the workers' own (``worker/broker.py``).

With ``--gpu`` the same comparison runs on the GPU through Keras's JAX backend (XLA): the naive worker is
Keras ``predict`` per task there too; ours is one threads-pool process per GPU with batches of up to 64,
and several such processes sharing the GPU (Python's per-task work, not the GPU, limits one process).

For each, N uploads are queued while no worker runs; then the worker starts, and throughput is
measured from the first recognition started to the last one stored (model loading excluded).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testsupport.factories import sample_photos  # noqa: E402
from testsupport.live_stack import Stack  # noqa: E402

CORES = os.cpu_count() or 1
WORKERS = {
    "naive": dict(pool="solo", concurrency=1, INFERENCE_RUNTIME="keras", INFERENCE_MAX_BATCH="1",
                  INFERENCE_THREADS=str(CORES)),
    "ours": dict(pool="threads", concurrency=32, INFERENCE_RUNTIME="litert", INFERENCE_MAX_BATCH="32",
                 INFERENCE_THREADS=str(CORES)),
    "ours, float model only": dict(pool="threads", concurrency=32, INFERENCE_RUNTIME="litert",
                                   INFERENCE_MAX_BATCH="32", INFERENCE_THREADS=str(CORES), INFERENCE_FAST_PATH="0"),
    "ours, kombu's Redis transport": dict(pool="threads", concurrency=32, INFERENCE_RUNTIME="litert",
                                          INFERENCE_MAX_BATCH="32", INFERENCE_THREADS=str(CORES),
                                          WORKER_FAST_BROKER="0"),
    "ours, prefork": dict(pool="prefork", concurrency=CORES, INFERENCE_RUNTIME="litert", INFERENCE_THREADS="1"),
    f"ours, {CORES} processes": dict(processes=CORES, pool="threads", concurrency=16, INFERENCE_RUNTIME="litert",
                                     INFERENCE_MAX_BATCH="32", INFERENCE_THREADS="1"),
    f"ours, {CORES} processes, float model only": dict(processes=CORES, pool="threads", concurrency=16,
                                                       INFERENCE_RUNTIME="litert", INFERENCE_MAX_BATCH="32",
                                                       INFERENCE_THREADS="1", INFERENCE_FAST_PATH="0"),
}
DEFAULT_KINDS = ("ours", "ours, float model only", f"ours, {CORES} processes",
                 f"ours, {CORES} processes, float model only")

GPU = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "KERAS_BACKEND": "jax"}
GPU_WORKERS = {
    "naive, GPU": dict(pool="solo", concurrency=1, INFERENCE_RUNTIME="keras", INFERENCE_MAX_BATCH="1", **GPU),
    "ours, GPU": dict(pool="threads", concurrency=64, INFERENCE_RUNTIME="jax", INFERENCE_MAX_BATCH="64", **GPU),
    "ours, GPU, 4 processes": dict(processes=4, pool="threads", concurrency=32, INFERENCE_RUNTIME="jax",
                                   INFERENCE_MAX_BATCH="32", **GPU),
}

# -- the photos ---------------------------------------------------------------------------------------
PHONE_SIZE = (4032, 3024)  # 12 MP, a phone's main camera
PHONE_EXIF = {  # what a real phone writes (an iPhone 13's main camera), GPS near Hoan Kiem Lake
    0x010F: "Apple", 0x0110: "iPhone 13", 0x0131: "16.5", 0x0112: 1, 0x011A: 72.0, 0x011B: 72.0, 0x0128: 2,
}
PHOTO_SETS = ("shared", "phone-jpeg", "phone-heic")


def real_photos() -> list[bytes]:
    return [p.read_bytes() if isinstance(p, Path) else p for p, _ in sample_photos(per_class=5, classes=20)]


def phone_photos(fmt: str, folder: Path, count: int = 20) -> list[bytes]:
    """``count`` real photos enlarged to 12 MP, with sensor-like noise (JPEG sizes of a real phone photo)
    and a phone's EXIF (camera, time, GPS), as JPEG or HEIC files in ``folder`` (a temporary directory)."""
    from PIL import Image

    from ml import images

    rng = np.random.default_rng(0)
    out = []
    for i, data in enumerate(real_photos()[:: max(1, 100 // count)][:count]):
        img = images.decode(data).image
        w, h = img.size  # crop to 4:3, then enlarge
        cw, ch = (min(w, h * 4 // 3), min(h, w * 3 // 4))
        img = img.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)).resize(PHONE_SIZE, Image.BICUBIC)
        noisy = np.asarray(img, np.int16) + rng.normal(0, 4, (PHONE_SIZE[1], PHONE_SIZE[0], 1)).astype(np.int16)
        img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        exif.update(PHONE_EXIF)
        exif.get_ifd(0x8769).update({0x9003: f"2026:11:28 09:41:{i:02d}", 0x9010: "+07:00", 0x829A: 1 / 120,
                                     0x829D: 1.6, 0x8827: 50, 0x920A: 5.1, 0xA405: 26})
        exif.get_ifd(0x8825).update({1: "N", 2: (21.0, 1.0, 43.2), 3: "E", 4: (105.0, 51.0, 10.8), 5: 0, 6: 12.0})
        buf = io.BytesIO()
        if fmt == "phone-heic":
            img.save(buf, "HEIF", quality=60, exif=exif.tobytes(), enc_params={"preset": "ultrafast"})  # x265 is slow
        else:
            img.save(buf, "JPEG", quality=92, exif=exif.tobytes())
        (folder / f"phone-{i:02d}.{'heic' if fmt == 'phone-heic' else 'jpg'}").write_bytes(buf.getvalue())
        out.append(buf.getvalue())
    return out


# -- the model-only ceiling -----------------------------------------------------------------------------
def ceiling_child(spec: dict) -> None:
    """In a subprocess: the model alone on the run's photos, at the run's batch sizes (in their proportions),
    with the worker's predictor settings; prints images/s. The photos are decoded as the worker decodes them."""
    from ml import images
    from ml.predictor import Predictor

    predictor = Predictor(runtime=spec["runtime"], threads=spec["threads"], max_batch=spec["max_batch"],
                          fast_path=spec["fast_path"])
    photos = [images.decode(Path(f).read_bytes(), draft_size=3 * predictor.img_size // 2).image  # as Engine.decode_size
              for f in spec["photos"]]
    arrays = predictor.preprocess(photos)
    sizes, order = spec["batch_sizes"], np.random.default_rng(spec["seed"])
    predictor.predict_arrays(arrays[: sizes[0]])  # warm: tensors allocated
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < spec["seconds"]:
        size = int(order.choice(sizes))
        pick = order.integers(0, len(arrays), size)
        predictor.predict_arrays(np.ascontiguousarray(arrays[pick]))
        done += size
    print(json.dumps({"per_second": done / (time.perf_counter() - started), "images": done,
                      "cpu_seconds": time.process_time() - cpu}), flush=True)


def model_ceiling(settings: dict, processes: int, batch_sizes: list[int], photo_files: list[Path],
                  seconds: float) -> tuple[float, float]:
    """Images/s of the model alone, laid out as the worker was (``processes`` at once, each with its model
    threads), at the batch sizes the worker ran: the ceiling the worker is measured against; and its images
    per CPU second (which other jobs on a shared machine disturb far less than images per second)."""
    spec = {"runtime": settings["INFERENCE_RUNTIME"], "threads": int(settings["INFERENCE_THREADS"]),
            "max_batch": int(settings["INFERENCE_MAX_BATCH"]), "fast_path": settings.get("INFERENCE_FAST_PATH") != "0",
            "photos": [str(f) for f in photo_files], "batch_sizes": batch_sizes, "seconds": seconds}
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), TF_CPP_MIN_LOG_LEVEL="2")
    children = [subprocess.Popen([sys.executable, __file__, "--ceiling-child", json.dumps({**spec, "seed": i})],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for i in range(processes)]
    outs = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    return sum(o["per_second"] for o in outs), sum(o["images"] for o in outs) / sum(o["cpu_seconds"] for o in outs)


# -- where a worker process's CPU goes (py-spy) -------------------------------------------------------------
IDLE = re.compile(r"(;_worker \(concurrent/futures/thread\.py:\d+\)|(Condition\.wait|Event\.wait|_epoll\.poll|"
                  r"_read_from_socket|Connection\.wait|Handler\.acquire|Lock\.acquire|select|poll) \([^;]*)$")
PARTS = [  # first match wins
    ("model (LiteRT)", r"Interpreter|_litert|_fast_then_float"),
    ("decoding", r"decode \(ml/images|decode_upload"),
    ("preprocessing (resize, normalise)", r"to_array|Predictor\.preprocess"),
    ("answer (tiers, few-shot, places)", r"_run_batch|predict_batch|decide"),
    ("database: claim", r"_claim_batch|claim_many"),
    ("database: finish", r"_finish_batch|finish_many"),
    ("database: other", r"sqlalchemy|psycopg"),
    ("broker: acknowledge", r"\.ack |acknowledge|basic_ack|ack_log|flush_acks"),
    ("broker: receive", r"kombu|redis|on_task_received|_receive_callback"),
    ("logging", r"logging/|Logger\."),
    ("Celery task path (trace, pool, request)", r"celery|concurrent/futures"),
]


def session_cpu_seconds(sessions: set[int]) -> float:
    """CPU seconds used so far by every process of these sessions (a worker and its pool processes)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sessions:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile_parts(raw: Path, cpu_ms_per_photo: float) -> dict[str, float]:
    """py-spy's raw stacks → CPU ms per photo by part (busy samples only, shared out by count)."""
    counts, busy = dict.fromkeys([name for name, _ in PARTS] + ["other"], 0), 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if IDLE.search(stack):
            continue
        busy += int(n)
        name = next((name for name, rx in PARTS if re.search(rx, stack)), "other")
        counts[name] += int(n)
    return {name: cpu_ms_per_photo * n / busy for name, n in counts.items() if busy}


# -- one worker kind --------------------------------------------------------------------------------------
def count_finished(stack, ids) -> int:
    from webapp.extensions import db
    from webapp.models import Recognition

    with stack.app.app_context():
        db.session.expire_all()
        return db.session.execute(db.select(db.func.count()).where(Recognition.id.in_(ids),
                                                                   Recognition.status.in_(("done", "failed")))).scalar()


def measure(kind: str, args, photos: list[bytes], photo_files: list[Path], workers: dict) -> dict:
    from webapp.extensions import db
    from webapp.models import Recognition

    tmp = Path(tempfile.mkdtemp(prefix=f"throughput-{kind.replace(' ', '').replace(',', '-')}-"))
    stack = Stack(tmp, *(() if args.embedded else (None if args.database == "sqlite" else args.database, args.broker)))
    stack.prepare()
    ids = [upload(stack, photos[i % len(photos)]) for i in range(args.photos)]
    settings = dict(workers[kind])
    processes, concurrency, pool = settings.pop("processes", 1), settings.pop("concurrency"), settings.pop("pool")
    for _ in range(processes):
        stack.start_worker(concurrency, pool, **settings)
    profile, window = None, None  # window: (CPU seconds, finished) when the first recognition started
    sessions = {w.pid for w in stack.workers}
    try:
        deadline = time.monotonic() + args.timeout
        with stack.app.app_context():
            while time.monotonic() < deadline:
                db.session.expire_all()
                rows = db.session.execute(db.select(Recognition.status, Recognition.started_at,
                                                    Recognition.finished_at, Recognition.batch_size,
                                                    Recognition.inference_ms, Recognition.decode_ms)
                                          .where(Recognition.id.in_(ids))).all()
                if window is None and any(r.status != "queued" for r in rows):
                    window = (session_cpu_seconds(sessions), sum(r.status in ("done", "failed") for r in rows))
                if all(r.status in ("done", "failed") for r in rows):
                    worker_cpu = session_cpu_seconds(sessions) - window[0]
                    break
                assert all(w.poll() is None for w in stack.workers), stack.log.read_text()[-3000:]
                if args.profile and profile is None and any(r.status != "queued" for r in rows):
                    profile = profile_worker(stack, ids, tmp / "py-spy.txt", args.profile)
                time.sleep(0.5)
    finally:
        stack.stop()
    done = [r for r in rows if r.status == "done"]
    if not done:
        raise SystemExit(f"{kind}: no recognition finished; the worker's log: {stack.log}")
    span = (max(r.finished_at for r in done) - min(r.started_at for r in done)).total_seconds()
    batches = [r.batch_size or 1 for r in done]
    result = {"kind": kind, "done": len(done), "failed": sum(r.status == "failed" for r in rows),
              "unfinished": len(ids) - len(rows) + sum(r.status not in ("done", "failed") for r in rows),
              "seconds": span, "per_second": len(done) / span if span else 0.0,
              "mean_batch": sum(batches) / len(batches), "max_batch": max(batches),
              "model_ms_per_image": sum(r.inference_ms / (r.batch_size or 1) for r in done) / len(done),
              "decode_ms": sum(r.decode_ms or 0 for r in done) / len(done), "profile": profile,
              "per_cpu_second": (len(rows) - window[1]) / worker_cpu}
    if settings["INFERENCE_RUNTIME"] == "litert" and not args.gpu:  # measured now: the same load as the run
        result["ceiling"], result["ceiling_per_cpu_second"] = model_ceiling(settings, processes, batches, photo_files,
                                                                            args.ceiling_seconds)
    return result


def upload(stack, data: bytes, tries: int = 60) -> str:
    """Upload through the web app; on a shared machine another job may restart PostgreSQL or Redis (503): wait."""
    for _ in range(tries - 1):
        try:
            return stack.upload(data)
        except AssertionError:
            time.sleep(1)
    return stack.upload(data)


def profile_worker(stack, ids, raw: Path, seconds: float) -> dict | None:
    """py-spy on the (first) worker process for ``seconds`` while it works: CPU ms per photo by part."""
    pid = stack.workers[0].pid
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy_bin).exists():
        print("--profile needs py-spy (requirements.txt)", file=sys.stderr)
        return None
    cpu, finished = cpu_seconds(pid), count_finished(stack, ids)
    spy = subprocess.run([spy_bin, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                          "--nonblocking", "--format", "raw", "--output", str(raw)], capture_output=True, text=True)
    cpu, finished = cpu_seconds(pid) - cpu, count_finished(stack, ids) - finished
    if spy.returncode != 0 or not raw.exists() or finished <= 0:
        print(f"py-spy gave no profile: {spy.stderr[-500:]}", file=sys.stderr)
        return None
    per_photo = 1000 * cpu / (finished / len(stack.workers))  # this process's share of the photos
    return {"cpu_ms_per_photo": per_photo, "parts": profile_parts(raw, per_photo)}


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
    ap.add_argument("--kinds", help="worker kinds to run, separated by semicolons (default: "
                    + "; ".join(DEFAULT_KINDS) + f"; all: {'; '.join(WORKERS)})")
    ap.add_argument("--photo-sets", default="shared", help=f"comma-separated, of {', '.join(PHOTO_SETS)}: the real "
                    "photos of ../shared, or phone-size ones made from them (12 MP, a phone's EXIF; in a temp dir)")
    ap.add_argument("--ceiling-seconds", type=float, default=6.0, help="how long the model-only ceiling is measured")
    ap.add_argument("--profile", type=float, default=0, metavar="SECONDS",
                    help="py-spy the worker for this long while it works: CPU ms per photo by part")
    ap.add_argument("--ceiling-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ceiling_child:
        ceiling_child(json.loads(args.ceiling_child))
        return 0
    # workers run in their own sessions: on SIGTERM (a timeout) unwind, so each Stack stops its workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workers = GPU_WORKERS if args.gpu else WORKERS
    kinds = args.kinds.split(";") if args.kinds else list(GPU_WORKERS if args.gpu else DEFAULT_KINDS)
    folder = Path(tempfile.mkdtemp(prefix="throughput-photos-"))
    results = []
    for photo_set in args.photo_sets.split(","):
        photos = (real_photos() if photo_set == "shared"
                  else phone_photos(photo_set, folder, count=6 if photo_set == "phone-heic" else 20))
        files = []
        for i, data in enumerate(photos[:40]):  # what the ceiling decodes
            files.append(folder / f"{photo_set}-{i:03d}")
            files[-1].write_bytes(data)
        for kind in kinds:  # each printed as it is measured: a run cut short still tells what it measured
            results.append({**measure(kind, args, photos, files, workers), "photos": photo_set,
                            "photo_bytes": sum(map(len, photos)) / len(photos)})
            print({k: v for k, v in results[-1].items() if k != "profile"}, flush=True)
    table = report(results)
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
        load = os.getloadavg()[0]
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Worker throughput (bench/worker_throughput.py), {time.strftime('%Y-%m-%d %H:%M')} UTC\n\n"
                     f"{CORES} CPUs ({cpu}), Python {platform.python_version()}, {where}, {args.photos} queued "
                     f"photos per row, shipped model; load average {load:.1f} when it finished. "
                     + "; ".join(f"{kind}: {workers[kind]}" for kind in kinds)
                     + ".\n\n" + "\n".join(table) + "\n")
    return 0


def report(results: list[dict]) -> list[str]:
    lines = [f"| {r['photos']} ({r['photo_bytes'] / 1e6:.2f} MB) | {r['kind']} | {r['done']} | {r['failed']} | "
             f"{r['unfinished']} | {r['per_second']:.1f} | "
             + (f"{r['ceiling']:.1f} | **{100 * r['per_second'] / r['ceiling']:.0f} %** | "
                f"{100 * r['per_cpu_second'] / r['ceiling_per_cpu_second']:.0f} % | "
                if "ceiling" in r else "— | — | — | ")
             + f"{r['mean_batch']:.1f} / {r['max_batch']} | {r['decode_ms']:.1f} |" for r in results]
    table = ["| photos | worker | done | failed | unfinished | photos/s | model-only ceiling (images/s) | "
             "worker / ceiling | same, per CPU second | batch mean / max | decode ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|", *lines]
    naive = [r["per_second"] for r in results if r["kind"].startswith("naive")]
    ours = [r["per_second"] for r in results if not r["kind"].startswith("naive")]
    if naive and ours:
        table += ["", f"best of ours / naive: **{max(ours) / naive[0]:.1f}×**"]
    profiled = [r for r in results if r.get("profile")]
    if profiled:
        parts = list(profiled[0]["profile"]["parts"])
        table += ["", "CPU ms per photo of one worker process, by part (py-spy, busy samples):", "",
                  "| photos | worker | total | " + " | ".join(parts) + " |", "|---|---|---|" + "---|" * len(parts)]
        table += [f"| {r['photos']} | {r['kind']} | {r['profile']['cpu_ms_per_photo']:.1f} | "
                  + " | ".join(f"{r['profile']['parts'][p]:.2f}" for p in parts) + " |" for r in profiled]
    return table


if __name__ == "__main__":
    sys.exit(main())
