"""Sustained load on the production stack, from loopback: gunicorn + Celery worker + Redis + PostgreSQL.

    .venv/bin/python bench/load.py --ramp 2,4,6,8 --step 30            # find the highest rate that holds
    .venv/bin/python bench/load.py --rate 4 --duration 300 --out docs/load.md   # the 5-minute run

Open loop: upload i is sent at t0 + i/rate whatever happened to the others (a bounded pool of client
threads; requests only to 127.0.0.1). Recognitions are not polled; at the end the database is read:
every accepted upload must be ``done`` (zero lost), every answer a 202 (zero errors). Latency is
upload start → result stored (``finished_at - created_at``). A rate "holds" when there are no errors,
nothing is lost, results are stored at ≥ 90 % of the offered rate (the backlog does not grow) and
it drains within ``--drain`` seconds of the last upload.
Rate limits are turned off for the run (``RATELIMIT_ENABLED=0``).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from testsupport.factories import sample_photos  # noqa: E402
from testsupport.live_stack import Stack  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn on loopback with the stack's configuration (2 processes × 4 threads, as `make run`)."""

    def __init__(self, stack: Stack, workers: int):
        self.port = free_port()
        env = dict(os.environ, DATABASE_URL=stack.db_url, CELERY_BROKER_URL=stack.broker_url,
                   UPLOAD_DIR=stack.config["UPLOAD_DIR"], INSTANCE_DIR=str(stack.tmp), SECRET_KEY="load",
                   RATELIMIT_ENABLED="0", SESSION_COOKIE_SECURE="0")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
             "--threads", "4", "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=(stack.tmp / "gunicorn.log").open("wb"))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def offer(url: str, photos: list[bytes], rate: float, seconds: float, threads: int) -> dict:
    """Send uploads at ``rate`` per second for ``seconds``; return ids, errors and timings."""
    local = threading.local()
    accepted, errors = [], []
    lock = threading.Lock()

    def one(i: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        try:
            resp = session.post(url + "/api/v1/recognitions",
                                files={"image": ("p.jpg", photos[i % len(photos)], "image/jpeg")}, timeout=60)
            with lock:
                if resp.status_code == 202:
                    accepted.append(resp.json()["id"])
                else:
                    errors.append(f"{resp.status_code} {resp.text[:100]}")
        except Exception as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    total = int(rate * seconds)
    started = time.monotonic()
    late = 0
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1:
                late += 1
            pool.submit(one, i)
    return {"sent": total, "accepted": accepted, "errors": errors, "send_seconds": time.monotonic() - started,
            "late": late}


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by every process on this machine, summed by kind."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        kind = ("web (gunicorn)" if "gunicorn" in cmd else "worker (celery)" if "celery" in cmd
                else "postgres" if "postgres" in raw[:raw.rindex(")")] else "redis" if "redis" in cmd
                else "load client" if "bench/load.py" in cmd else "other")
        totals[kind] = totals.get(kind, 0.0) + used
    return totals


def settle(stack: Stack, ids: list[str], drain: float) -> dict:
    """Wait until every accepted id is finished (or ``drain`` seconds), then measure from the database."""
    from webapp.extensions import db
    from webapp.models import Recognition

    wanted = set(ids)
    deadline = time.monotonic() + drain
    with stack.app.app_context():
        while True:
            db.session.expire_all()
            rows = db.session.execute(
                db.select(Recognition.id, Recognition.status, Recognition.created_at, Recognition.finished_at,
                          Recognition.started_at, Recognition.decode_ms, Recognition.inference_ms,
                          Recognition.batch_size)
                .where(Recognition.id.in_(wanted))
            ).all()
            pending = [r for r in rows if r.status not in ("done", "failed")]
            if (not pending and len(rows) == len(wanted)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    latencies = sorted((r.finished_at - r.created_at).total_seconds() for r in rows if r.finished_at)
    done = sum(r.status == "done" for r in rows)
    finished_times = [r.finished_at for r in rows if r.finished_at]
    span = (max(finished_times) - min(r.created_at for r in rows)).total_seconds() if finished_times else 0
    finished = [r for r in rows if r.status == "done"]
    mean = lambda values: statistics.fmean(values) if values else float("nan")  # noqa: E731
    stages = {  # where one recognition's time goes, in ms (means)
        "queued (upload stored → worker starts)": mean([(r.started_at - r.created_at).total_seconds() * 1000
                                                        for r in finished]),
        "decode": mean([r.decode_ms for r in finished]),
        "model (its batch)": mean([r.inference_ms for r in finished]),
        "batch size": mean([r.batch_size or 1 for r in finished]),
        "worker total (start → stored)": mean([(r.finished_at - r.started_at).total_seconds() * 1000
                                                for r in finished]),
    }
    return {"done": done, "failed": sum(r.status == "failed" for r in rows), "pending": len(pending),
            "missing": len(wanted) - len(rows), "latencies": latencies,
            "throughput": done / span if span else 0.0, "stages": stages}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def run_step(stack, server, photos, rate, seconds, threads, drain) -> dict:
    cpu_before = cpu_seconds()
    sent = offer(server.url, photos, rate, seconds, threads)
    result = settle(stack, sent["accepted"], drain)
    cpu_after = cpu_seconds()
    per_photo = {kind: (cpu_after.get(kind, 0) - cpu_before.get(kind, 0)) * 1000 / max(1, result["done"])
                 for kind in cpu_after}
    lat = result["latencies"]
    held = (not sent["errors"] and result["done"] == len(sent["accepted"]) == sent["sent"]
            and result["throughput"] >= 0.9 * rate)  # the workers keep up: no growing backlog
    line = (f"rate {rate:g}/s for {seconds:g}s: sent {sent['sent']}, accepted {len(sent['accepted'])}, "
            f"errors {len(sent['errors'])}, done {result['done']}, failed {result['failed']}, "
            f"pending {result['pending']}, missing {result['missing']}, throughput {result['throughput']:.2f}/s, "
            f"latency p50 {percentile(lat, .5):.2f}s p95 {percentile(lat, .95):.2f}s p99 {percentile(lat, .99):.2f}s "
            f"max {max(lat) if lat else float('nan'):.2f}s → {'HELD' if held else 'NOT HELD'}")
    profile = ("time per photo: " + ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items())
               + "; CPU ms per photo: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_photo.items())
                                                      if v >= 0.05))
    print(line, flush=True)
    print("   " + profile, flush=True)
    for err in sent["errors"][:5]:
        print("   error:", err, flush=True)
    return {"rate": rate, "held": held, "line": line, "profile": profile, "sent": sent, "result": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--ramp", default="", help="comma-separated rates to try, --step seconds each")
    parser.add_argument("--step", type=float, default=30.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=32, help="client threads (bounds concurrent requests)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-pool", default="threads", help="threads (micro-batching) or prefork")
    parser.add_argument("--worker-concurrency", type=int, default=16)
    parser.add_argument("--worker-processes", type=int, default=1, help="worker processes (each its own model)")
    parser.add_argument("--model-threads", type=int, default=0, help="INFERENCE_THREADS (default: cores for one "
                        "threads-pool process, else 1)")
    parser.add_argument("--out", type=Path, default=None, help="append a Markdown summary here")
    args = parser.parse_args()

    stack = Stack(Path(tempfile.mkdtemp(prefix="load-")), args.database, args.broker)
    stack.prepare()
    photos = [p.read_bytes() if isinstance(p, Path) else p for p, _ in sample_photos(per_class=3, classes=10)]
    threads = args.model_threads or (1 if args.worker_pool == "prefork" or args.worker_processes > 1
                                     else os.cpu_count())
    for _ in range(args.worker_processes):
        stack.start_worker(args.worker_concurrency, args.worker_pool, INFERENCE_THREADS=str(threads))
    server = Server(stack, args.web_workers)
    steps = []
    try:
        warm = offer(server.url, photos, 2, 2, 4)  # model loaded in every pool process
        settle(stack, warm["accepted"], 120)
        rates = [float(r) for r in args.ramp.split(",")] if args.ramp else [args.rate]
        for rate in rates:
            steps.append(run_step(stack, server, photos, rate, args.step if args.ramp else args.duration,
                                  args.threads, args.drain))
    finally:
        server.stop()
        stack.stop()
    if args.out:
        cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## bench/load.py, {time.strftime('%Y-%m-%d %H:%M')} UTC\n\n"
                     f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}; gunicorn "
                     f"{args.web_workers}×4 threads, {args.worker_processes} Celery worker(s) "
                     f"--pool {args.worker_pool} "
                     f"--concurrency {args.worker_concurrency}, INFERENCE_THREADS={threads}, Redis, PostgreSQL, "
                     "all on this machine.\n\n")
            for step in steps:
                fh.write(f"- {step['line']}\n  - {step['profile']}\n")
    return 0 if all(step["held"] for step in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
