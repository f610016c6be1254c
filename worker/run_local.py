"""``make run``: the web server and one Celery worker on this machine, supervised.

Starts gunicorn on 127.0.0.1:$PORT (default 5000) and a worker on the ``inference`` and
``maintenance`` queues with Celery beat embedded (the sweeper and the purge), restarts the worker whenever it dies, and stops both on Ctrl-C or SIGTERM.
Each child runs in its own session, so a Ctrl-C reaches only this supervisor, which
then shuts the children down in order (warm shutdown: a running task finishes).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STOP_TIMEOUT = 30  # seconds a child may take to finish its work before it is killed


def web_command(port: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
            "--access-logfile", "-", "wsgi:app"]


def worker_command(concurrency: str) -> list[str]:
    # -B: this one worker also runs beat (the sweeper and the purge, on the maintenance queue)
    return [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", "inference,maintenance", "-B",
            "--concurrency", concurrency, "--loglevel", "INFO"]


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, start_new_session=True)


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
    worker = start(worker_command(os.environ.get("WORKER_CONCURRENCY", "1")))
    print(f"* web on http://127.0.0.1:{port}/ (pid {web.pid}), worker pid {worker.pid}; Ctrl-C stops both",
          flush=True)
    restarts = 0
    exit_code = 0
    while not stopping:
        time.sleep(0.5)
        if os.getppid() != parent:
            break
        if web.poll() is not None:
            print(f"* web server exited with {web.returncode}; stopping", file=sys.stderr, flush=True)
            exit_code = 1
            break
        if worker.poll() is not None:
            kill_group(worker)
            restarts += 1
            delay = min(30, 2 ** min(restarts, 5))
            print(f"* worker exited with {worker.returncode}; restarting in {delay}s", file=sys.stderr, flush=True)
            deadline = time.monotonic() + delay
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if not stopping:
                worker = start(worker_command(os.environ.get("WORKER_CONCURRENCY", "1")))
                print(f"* worker restarted (pid {worker.pid})", flush=True)
    print("* stopping web and worker", flush=True)
    stop(worker)
    stop(web)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
