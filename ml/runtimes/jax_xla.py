"""The Keras model on Keras's JAX backend, compiled by XLA: GPU hosts that have JAX rather than TensorFlow."""
from __future__ import annotations

import os
import sys

import numpy as np

from ml.bundle import BundleError, BundleInfo


def load(info: BundleInfo, max_batch: int):
    # Keras picks its backend once, at its first import; a process serving this runtime imports it here first
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several workers may share one GPU
    import jax
    import keras

    if keras.backend.backend() != "jax":
        raise BundleError(f"the jax runtime needs KERAS_BACKEND=jax before Keras is imported "
                          f"(this process already uses {keras.backend.backend()})")
    model = keras.models.load_model(info.keras, compile=False)
    weights = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])
    size = int(info.preprocess["size"])

    @jax.jit
    def call(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    # XLA compiles once per input shape: batches are padded to a power of two, all compiled now,
    # so no visitor's photo waits for a compilation
    buckets = sorted({min(2 ** i, max_batch) for i in range(max_batch.bit_length() + 1)})
    for bucket in buckets:
        jax.block_until_ready(call(*weights, np.zeros((bucket, size, size, 3), np.float32)))

    def run(batch: np.ndarray):
        bucket = next(b for b in buckets if b >= len(batch))
        padded = np.pad(batch, ((0, bucket - len(batch)), (0, 0), (0, 0), (0, 0))) if bucket > len(batch) else batch
        return [np.asarray(o)[: len(batch)] for o in call(*weights, padded.astype(np.float32, copy=False))]

    return run
