"""`make run`'s supervisor: web + workers up, a dead worker is restarted, SIGTERM stops everything."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from testsupport.factories import ROOT


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
    """Running (a zombie is not: once orphaned it waits for a reaper that a container may not have)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start_supervisor(port: int, instance_dir) -> subprocess.Popen:
    env = dict(os.environ, PORT=str(port), INSTANCE_DIR=str(instance_dir), PYTHONPATH=str(ROOT),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "worker.run_local"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def started_pids(proc) -> tuple[int, int, int]:
    """(web, inference worker, training worker) as the supervisor announces them."""
    match = wait_for_line(proc, r"\(pid (\d+)\); inference worker pid (\d+), training worker pid (\d+)")
    return int(match[1]), int(match[2]), int(match[3])


def wait_until_gone(pids: list[int], timeout: float = 60) -> list[int]:
    """The pids still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.5)
    return [pid for pid in pids if alive(pid)]


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
    proc = start_supervisor(port, tmp_path)
    try:
        web_pid, worker_pid, training_pid = started_pids(proc)
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


def test_children_end_with_a_supervisor_killed_outright(tmp_path):
    """SIGKILL gives the supervisor no chance to stop anything: the kernel tells each child (PR_SET_PDEATHSIG)."""
    port = free_port()
    proc = start_supervisor(port, tmp_path)
    try:
        pids = list(started_pids(proc))
        pids += pool_of(pids[1])  # the inference worker's embedded beat
        proc.kill()
        proc.wait(timeout=10)
        assert wait_until_gone(pids) == []
        with socket.socket() as s:  # the web server let go of the port
            s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
