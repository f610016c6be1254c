"""Load a bundle once, predict batches of decoded images with LiteRT (CPU), TensorFlow or JAX (GPU).

The runtimes live in ``ml/runtimes/``: ``litert`` (CPU workers; with the bundle's int8 fast path,
``ml.fastpath``, when it has one), ``tensorflow`` (the Keras model compiled with ``tf.function``), ``jax``
(the same Keras model on Keras's JAX backend, compiled with XLA; for GPU hosts that have JAX rather than
TensorFlow), ``keras`` (plain ``model.predict``: the naive baseline in benchmarks). The predictor adds
preprocessing, batching, the fast path and the answer tiers.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml import bundle as bundles
from ml.bundle import BundleError, default_bundle_dir  # noqa: F401  (public API)
from ml.fastpath import unclear
from ml.images import ImageSource, load_rgb, to_array
from ml.result import Result
from ml.runtimes import RUNTIMES, gpu_visible, resolve  # noqa: F401  (public API)
from ml.runtimes import load as load_runtime
from ml.runtimes.litert import load as load_litert
from ml.tiers import TierRule, answer


class Predictor:
    def __init__(self, bundle_dir: str | Path | None = None, runtime: str = "auto", *,
                 threads: int | None = None, max_batch: int = 32, fast_path: bool = True):
        self.runtime = resolve(runtime)
        self.info = bundles.read(bundle_dir)
        self.tiers = TierRule.from_bundle(self.info.extra)
        if self.tiers.min_similarity > -1.0:  # bench/rejection.py compares such rules; serving has no similarity here
            raise BundleError(f"{self.info.path}: tier rules with a similarity bar are not served")
        self.max_batch = max_batch
        self.threads = threads or int(os.environ.get("ML_THREADS", 0)) or os.cpu_count() or 1
        self._run = load_runtime(self.runtime, self.info, threads=self.threads, max_batch=max_batch)
        # the int8 fast path (litert only): its rule {"margin", "floor"}, or None when not in use
        rule = self.info.extra.get("fast_path") if fast_path and self.runtime == "litert" else None
        self.fast_path = {"margin": float(rule["margin"]), "floor": float(rule["floor"])} if rule else None
        if rule and not (self.info.path / rule["file"]).exists():
            raise BundleError(f"incomplete model bundle {self.info.path}: {rule['file']} (its fast path) is missing")
        self._fast = load_litert(self.info.path / rule["file"], self.info, self.threads) if rule else None

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    @property
    def img_size(self) -> int:
        return int(self.info.preprocess["size"])

    # -- public -------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image | ImageSource]) -> np.ndarray:
        """Decoded images (or paths/bytes) → the normalised float32 batch the model expects."""
        p = self.info.preprocess
        arrays = [to_array(img if isinstance(img, Image.Image) else load_rgb(img), int(p["size"]), p["resize"])
                  for img in images]
        batch = np.stack(arrays) if arrays else np.zeros((0, self.img_size, self.img_size, 3), np.float32)
        return (batch - float(p["mean"])) / float(p["std"])

    def predict(self, images: Sequence[Image.Image | ImageSource]) -> list[Result]:
        return self.predict_batch(self.preprocess(images))

    def predict_batch(self, batch: np.ndarray, exact: bool = False) -> list[Result]:
        """One prediction per image of a normalised batch (``preprocess``). ``exact``: the float model's
        outputs for every image, even with a fast path (stored few-shot signatures)."""
        probs, embeddings = self.predict_arrays(batch, exact)
        return [self.decide(p, e) for p, e in zip(probs, embeddings, strict=False)]

    def predict_arrays(self, batch: np.ndarray, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Raw model outputs for a normalised batch: (probs incl. background column, embeddings)."""
        run = self._run if exact or self._fast is None else self._fast_then_float
        return self._chunked(run, batch)

    def fast_arrays(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The int8 model's own outputs (for ``ml.quantize.compare``)."""
        return self._chunked(self._fast, batch)

    def _chunked(self, run, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(batch) == 0:
            return np.zeros((0, len(self.labels))), np.zeros((0, 0))
        outs = [run(batch[i: i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def _fast_then_float(self, batch: np.ndarray):
        assert self._fast is not None and self.fast_path is not None  # only run with a fast path (predict_arrays)
        probs, embeddings = self._fast(batch)
        redo = unclear(probs, len(self.labels), **self.fast_path, tiers=self.tiers)
        if redo.any():
            probs[redo], embeddings[redo] = self._run(np.ascontiguousarray(batch[redo]))
        return probs, embeddings

    def decide(self, probs: np.ndarray, embedding: np.ndarray) -> Result:
        """One image's outputs → its result: tier (``ml.tiers``), label (the
        first candidate of a sure or maybe answer), score, top-5, embedding."""
        landmark = probs[: len(self.labels)]
        order = np.argsort(-landmark)[:5]
        top5 = [(self.labels[i], float(landmark[i])) for i in order]
        result = answer(top5, self.tiers)
        candidate = result.suggestions[0] if result.tier != "unknown" else None
        return Result(candidate, top5[0][1], top5, result.tier, result.suggestions,
                      embedding=embedding.astype(np.float32), version=self.version)


def predict_files(predictor: Predictor, files: Iterable[str]) -> Iterable[dict]:
    """The ``predict`` CLI contract: one dict per file, in order; unusable files give ``error``."""
    from ml.images import ImageError, decode

    files = list(files)
    for start in range(0, len(files), predictor.max_batch):
        chunk = files[start: start + predictor.max_batch]
        decoded, rows = [], []
        for f in chunk:
            try:
                decoded.append(decode(f).image)
                rows.append({"file": f})
            except ImageError as err:
                rows.append({"file": f, "error": str(err)})
        preds = iter(predictor.predict(decoded))
        for row in rows:
            yield row if "error" in row else {**row, **next(preds).to_json()}
