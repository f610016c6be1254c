"""Model bundles: a directory that carries everything needed to serve a model.

    model.tflite      LiteRT model (float32)
    model.int8.tflite optional int8 fast path (``ml.fastpath``; its rule in bundle.json)
    model.keras       the same network for TensorFlow/Keras (GPU workers)
    labels.json       ordered class keys (dataset folder names)
    bundle.json       version, architecture, preprocessing, rejection, split settings
    metrics.json      evaluation results (written by ``ml.evaluate``)

Both models map a normalised batch (N, S, S, 3) to ``[probs, embedding]`` where the embedding is
L2-normalised. When the model was trained with a background class, it is the last output column.
This module reads bundles without TensorFlow; exporting needs it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "shipped" / "landmarks-vn50"
FILES = ("model.tflite", "model.keras", "labels.json", "bundle.json")


class BundleError(RuntimeError):
    """A bundle is missing, incomplete or unreadable."""


@dataclass
class BundleInfo:
    path: Path
    version: str
    arch: str
    labels: list[str]
    preprocess: dict  # {"size", "mean", "std", "resize"}
    rejection: dict  # {"method": "max_prob", "threshold": float}
    background: bool  # the model has an extra last output for "not a landmark"
    extra: dict = field(default_factory=dict)

    @property
    def tflite(self) -> Path:
        return self.path / "model.tflite"

    @property
    def keras(self) -> Path:
        return self.path / "model.keras"


def default_bundle_dir() -> Path:
    return SHIPPED


def read(path: str | Path | None = None) -> BundleInfo:
    path = Path(path) if path else SHIPPED
    try:
        meta = json.loads((path / "bundle.json").read_text())
        labels = json.loads((path / "labels.json").read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"not a model bundle: {path} ({Path(exc.filename).name} is missing)") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"unreadable model bundle {path}: {exc}") from None
    return BundleInfo(
        path=path,
        version=meta["version"],
        arch=meta["arch"],
        labels=labels,
        preprocess=meta["preprocess"],
        rejection=meta.get("rejection", {"method": "max_prob", "threshold": 0.0}),
        background=meta.get("background", False),
        extra=meta,
    )


def write_meta(path: Path, meta: dict) -> str:
    """Write bundle.json with a content-hash version id over the model files and settings."""
    digest = hashlib.sha256()
    for name in ("model.tflite", "labels.json"):
        digest.update((path / name).read_bytes())
    # every setting that changes an answer or a signature (the newer ones only where present: older ids stay)
    decisive = {k: meta[k] for k in ("preprocess", "rejection", "tiers", "places", "fewshot") if k in meta}
    digest.update(json.dumps(decisive, sort_keys=True).encode())
    meta = dict(meta, version=f"{meta.get('name', meta['arch'])}-{digest.hexdigest()[:10]}")
    (path / "bundle.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return meta["version"]


def export(
    model,
    out: str | Path,
    *,
    labels: list[str],
    arch: str,
    preprocess: dict,
    background: bool,
    rejection: dict | None = None,
    name: str | None = None,
    extra: dict | None = None,
) -> BundleInfo:
    """Write a bundle for a trained classifier (a Keras model with an ``embedding`` layer)."""
    import keras

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    embedding = keras.layers.UnitNormalization(name="embedding_l2")(model.get_layer("embedding").output)
    serving = keras.Model(model.input, [model.output, embedding], name="serving")
    serving.save(out / "model.keras")

    (out / "model.tflite").write_bytes(to_tflite(serving))
    (out / "labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False))
    meta = {
        "name": name or arch,
        "arch": arch,
        "preprocess": preprocess,
        "background": background,
        "rejection": rejection or {"method": "max_prob", "threshold": 0.0},
        "outputs": ["probs", "embedding"],
        **(extra or {}),
    }
    write_meta(out, meta)
    return read(out)


def to_tflite(model, calibration=None) -> bytes:
    """A Keras model as a LiteRT model: float32, or with ``calibration`` (a callable yielding ``[batch]``
    lists of normalised inputs) fully int8-quantised, float input and output."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured tensor
        return converter.convert()


def update(path: str | Path, **changes) -> BundleInfo:
    """Change settings (e.g. the calibrated rejection threshold) and re-derive the version id."""
    path = Path(path)
    meta = json.loads((path / "bundle.json").read_text())
    meta.update(changes)
    write_meta(path, meta)
    return read(path)


def make_tiny_bundle(out: str | Path, labels: list[str], *, img_size: int = 32, seed: int = 0,
                     background: bool = False, threshold: float = 0.0) -> BundleInfo:
    """A small untrained bundle (milliseconds per image) for tests and demos of the serving path."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((img_size, img_size, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(16, activation="relu", name="embedding")(x)
    probs = layers.Dense(len(labels) + int(background), activation="softmax", name="probs")(x)
    preprocess = {"size": img_size, "mean": 127.5, "std": 127.5, "resize": "bilinear"}
    return export(keras.Model(inputs, probs), out, labels=labels, arch="tiny", preprocess=preprocess,
                  background=background, rejection={"method": "max_prob", "threshold": threshold})
