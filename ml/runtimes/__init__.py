"""Model runtimes, one module each: load a bundle's model as ``run(batch) -> (probs, embeddings)``.

``ml.predictor.Predictor`` picks one and adds preprocessing, batching, the int8 fast path and the
answer tiers on top. Each module imports its framework only when a model is loaded, so the web and
the CLI never pay for the ones they do not use.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ml.bundle import BundleError, BundleInfo

RUNTIMES = ("auto", "litert", "tensorflow", "jax", "keras")
Run = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # normalised batch -> (probs, embeddings)


def gpu_visible() -> bool:
    """True when an NVIDIA GPU is usable, checked without importing TensorFlow."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def resolve(runtime: str) -> str:
    """``auto`` → TensorFlow when a GPU is visible, LiteRT otherwise; the others as they are."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    return ("tensorflow" if gpu_visible() else "litert") if runtime == "auto" else runtime


def load(runtime: str, info: BundleInfo, *, threads: int, max_batch: int) -> Run:
    """The bundle's float model on ``runtime`` (already resolved), or a clear ``BundleError``."""
    try:
        if runtime == "litert":
            from ml.runtimes import litert

            return litert.load(info.tflite, info, threads)
        if runtime == "jax":
            from ml.runtimes import jax_xla

            return jax_xla.load(info, max_batch)
        from ml.runtimes import keras_tf

        return keras_tf.load(info, jit=runtime == "tensorflow")
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"cannot load the {runtime} model from {info.path}: {exc}") from exc
