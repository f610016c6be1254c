"""LiteRT (TFLite) on CPU: the default serving runtime, no TensorFlow needed; also runs the int8 fast path."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.bundle import BundleInfo


def load(model_file: Path, info: BundleInfo, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_file), num_threads=threads)
    inp = interpreter.get_input_details()[0]["index"]
    n_probs = len(info.labels) + (1 if info.background else 0)
    shape: list = [None]
    order: list = [None]

    def outputs_in_order() -> tuple[int, int]:
        # Output tensor order is not guaranteed: the probabilities are the one as wide as the classes
        widths = {d["index"]: d["shape"][-1] for d in interpreter.get_output_details()}
        probs = next(i for i, w in widths.items() if w == n_probs)
        return probs, next(i for i in widths if i != probs)

    def run(batch: np.ndarray):
        if shape[0] != batch.shape:
            interpreter.resize_tensor_input(inp, batch.shape, strict=False)
            interpreter.allocate_tensors()
            shape[0] = batch.shape
            order[0] = outputs_in_order()
        interpreter.set_tensor(inp, batch.astype(np.float32, copy=False))
        interpreter.invoke()
        return interpreter.get_tensor(order[0][0]).copy(), interpreter.get_tensor(order[0][1]).copy()

    return run
