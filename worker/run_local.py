"""``make run``: the web server and the Celery workers on this machine, supervised.

Starts gunicorn on 127.0.0.1:$PORT (default 5000), the inference workers — as many threads-pool
processes and model threads as ``worker.layout`` picks for this machine's cores (the sizing table in
docs/performance.md; ``WORKER_PROCESSES``, ``WORKER_CONCURRENCY`` and ``INFERENCE_THREADS`` override
it), on the ``inference`` and ``inference-album`` queues (albums' photos, taken in turn with single ones),
the first also on the ``maintenance`` queue with Celery beat embedded (the sweeper and the purge) — and a
training worker (``training`` queue, one run at a time). Restarts a worker whenever it dies, and stops
everything on Ctrl-C or SIGTERM. Each child runs in its own session, so a Ctrl-C reaches only this
supervisor, which then shuts the children down in order (warm shutdown: a running task finishes). On Linux each child
also asks the kernel for SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``): a supervisor killed
outright (SIGKILL, a closed terminal) leaves no server holding the port or the queue.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from worker.layout import TASK_THREADS, inference_layout, usable_cores

STOP_TIMEOUT = 30  # seconds a child may take to finish its work before it is killed


def web_command(port: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
            "--access-logfile", "-", "wsgi:app"]


def worker_commands() -> dict[str, list[str]]:
    celery = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO"]
    processes, _threads = inference_layout(usable_cores())
    processes = int(os.environ.get("WORKER_PROCESSES") or processes)
    inference = ["--pool", "threads", "--concurrency", os.environ.get("WORKER_CONCURRENCY") or str(TASK_THREADS)]
    commands = {
        # -B: this worker also runs beat (the sweeper and the purge, on the maintenance queue)
        "inference worker": celery + ["-Q", "inference,inference-album,maintenance", "-B", *inference,
                                      "--hostname", "inference@%h"],
        "training worker": celery + ["-Q", "training", "--pool", "solo", "--hostname", "training@%h"],
    }
    for n in range(2, processes + 1):
        commands[f"inference worker {n}"] = celery + ["-Q", "inference,inference-album", *inference,
                                                      "--hostname", f"inference{n}@%h"]
    return commands


def worker_env() -> dict[str, str]:
    """The workers' environment: the layout's model threads per process, unless INFERENCE_THREADS is set."""
    threads = inference_layout(usable_cores())[1]
    if os.environ.get("WORKER_PROCESSES"):
        threads = max(1, usable_cores() // int(os.environ["WORKER_PROCESSES"]))
    return {**os.environ, "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS") or str(threads)}


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    supervisor = os.getpid()
    return subprocess.Popen(cmd, start_new_session=True, env=env,
                            preexec_fn=(lambda: end_with(supervisor)) if sys.platform == "linux" else None)


def end_with(supervisor: int) -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, even by SIGKILL (kept across exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != supervisor:  # it died between fork and prctl: nobody would tell us
        os._exit(1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    """Kill what is left of a child's session: a worker killed outright orphans its pool and beat."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main() -> int:
    port = os.environ.get("PORT", "5000")
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    parent = os.getppid()  # `make run`: if make itself is killed, stop too

    web = start(web_command(port))
    commands = worker_commands()
    env = worker_env()
    workers = {name: start(cmd, env) for name, cmd in commands.items()}
    print(f"* web on http://127.0.0.1:{port}/ (pid {web.pid}); "
          + ", ".join(f"{name} pid {proc.pid}" for name, proc in workers.items()) + "; Ctrl-C stops all", flush=True)
    restarts = dict.fromkeys(workers, 0)
    exit_code = 0
    while not stopping:
        time.sleep(0.5)
        if os.getppid() != parent:
            break
        if web.poll() is not None:
            print(f"* web server exited with {web.returncode}; stopping", file=sys.stderr, flush=True)
            exit_code = 1
            break
        for name, proc in workers.items():
            if proc.poll() is None:
                continue
            kill_group(proc)
            restarts[name] += 1
            delay = min(30, 2 ** min(restarts[name], 5))
            print(f"* {name} exited with {proc.returncode}; restarting in {delay}s", file=sys.stderr, flush=True)
            deadline = time.monotonic() + delay
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if not stopping:
                workers[name] = start(commands[name], env)
                print(f"* {name} restarted (pid {workers[name].pid})", flush=True)
    print("* stopping web and workers", flush=True)
    for proc in workers.values():
        stop(proc)
    stop(web)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
