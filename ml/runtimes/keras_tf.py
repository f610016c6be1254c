"""The Keras model: compiled with ``tf.function`` (GPU workers), or plain ``predict`` (the naive baseline)."""
from __future__ import annotations

import os

import numpy as np

from ml.bundle import BundleInfo


def load(info: BundleInfo, jit: bool):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.models.load_model(info.keras, compile=False)
    if not jit:  # plain Keras predict() on whichever backend Keras runs
        return lambda batch: [np.asarray(o) for o in model.predict(batch, verbose=0, batch_size=len(batch))]
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda batch: [o.numpy() for o in call(tf.convert_to_tensor(batch, tf.float32))]
