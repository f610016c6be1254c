"""`make run`'s supervisor: web + workers up, a dead worker is restarted, SIGTERM stops everything."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from factories import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(proc, pattern: str, timeout: float = 90) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if match := re.search(pattern, line):
            return match
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line matching {pattern!r}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pool_of(pid: int) -> list[int]:
    """The worker's child processes (its pool and embedded beat), once they have started."""
    for _ in range(120):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        if out.split():
            return [int(p) for p in out.split()]
        time.sleep(0.5)
    return []


def test_supervisor_restarts_the_worker_and_stops_everything(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), INSTANCE_DIR=str(tmp_path), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "worker.run_local"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        match = wait_for_line(proc, r"\(pid (\d+)\); inference worker pid (\d+), training worker pid (\d+)")
        web_pid, worker_pid, training_pid = int(match[1]), int(match[2]), int(match[3])
        body = None
        for _ in range(120):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        assert body == b'{"status":"ok"}\n'

        children = pool_of(worker_pid)
        assert children, "the worker should have pool/beat processes"
        os.kill(worker_pid, signal.SIGKILL)
        new_worker_pid = int(wait_for_line(proc, r"inference worker restarted \(pid (\d+)\)")[1])
        assert new_worker_pid != worker_pid and alive(new_worker_pid) and alive(training_pid)
        assert not any(alive(pid) for pid in children)  # no orphans of the killed worker

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not alive(web_pid) and not alive(new_worker_pid) and not alive(training_pid)
    finally:
        if proc.poll() is None:  # let the supervisor stop its children
            proc.terminate()
            proc.wait(timeout=60)
