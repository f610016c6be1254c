"""The inference layout `make run` picks from the cores it may use (worker/layout.py, worker/run_local.py)."""
import os
import subprocess
import sys

import pytest

from testsupport.factories import ROOT
from worker import run_local
from worker.layout import inference_layout, usable_cores


@pytest.mark.parametrize(("cores", "layout"), [(1, (1, 1)), (2, (1, 2)), (4, (1, 4)), (8, (2, 4)), (16, (4, 4))])
def test_the_sizing_table(cores, layout):
    assert inference_layout(cores) == layout


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux CPU affinity")
def test_usable_cores_follow_the_cpu_affinity():
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); " \
           "from worker.layout import usable_cores; print(usable_cores())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_make_run_starts_the_layout_of_this_machine(monkeypatch):
    monkeypatch.delenv("WORKER_PROCESSES", raising=False)
    monkeypatch.delenv("INFERENCE_THREADS", raising=False)
    monkeypatch.setattr(run_local, "usable_cores", lambda: 8)
    commands = run_local.worker_commands()
    inference = [cmd for name, cmd in commands.items() if name.startswith("inference worker")]
    assert len(inference) == 2
    queues = [("-B" in cmd, cmd[cmd.index("-Q") + 1]) for cmd in inference]
    # beat once: only the first runs it, and the maintenance queue
    assert queues == [(True, "inference,inference-album,maintenance"), (False, "inference,inference-album")]
    assert all(cmd[cmd.index("--concurrency") + 1] == "32" for cmd in inference)
    assert len({cmd[cmd.index("--hostname") + 1] for cmd in inference}) == 2
    assert run_local.worker_env()["INFERENCE_THREADS"] == "4"


def test_the_operator_overrides_the_layout(monkeypatch):
    monkeypatch.setattr(run_local, "usable_cores", lambda: 8)
    monkeypatch.setenv("WORKER_PROCESSES", "1")
    monkeypatch.setenv("WORKER_CONCURRENCY", "8")
    commands = run_local.worker_commands()
    assert [name for name in commands if name.startswith("inference")] == ["inference worker"]
    assert commands["inference worker"][commands["inference worker"].index("--concurrency") + 1] == "8"
    assert run_local.worker_env()["INFERENCE_THREADS"] == "8"
    monkeypatch.setenv("INFERENCE_THREADS", "3")
    assert run_local.worker_env()["INFERENCE_THREADS"] == "3"
