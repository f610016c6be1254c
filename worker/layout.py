"""How many inference worker processes and model threads a CPU host gets (the sizing table in
docs/performance.md): chosen from the cores this process may use, so `make run` and a container
need no tuning.

One threads-pool process does its per-photo Python work (Celery, claims and results, decoding,
answers) under one GIL: measured, about 4 ms of CPU per photo beside 11 ms of model work (int8 fast
path, EfficientNet-Lite2). One process therefore keeps about three model threads busy; each further
``CORES_PER_PROCESS`` cores get a process of their own.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CORES_PER_PROCESS = 4
TASK_THREADS = 32  # per process: enough waiting photos to fill a batch of INFERENCE_MAX_BATCH (32)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (a container's ``cpus``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def inference_layout(cores: int) -> tuple[int, int]:
    """(processes, model threads per process) for a CPU host with ``cores`` cores."""
    processes = max(1, round(cores / CORES_PER_PROCESS))
    return processes, max(1, cores // processes)
