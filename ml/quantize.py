"""Build the int8 fast path of a float bundle (``ml.fastpath`` is its rule) and measure it.

``add`` quantises ``model.keras`` to ``model.int8.tflite`` and writes the rule into ``bundle.json``;
``compare`` measures how often float model and fast path answer differently, the quality measures of
each, and the cost (the share of photos the float model sees again). ``python -m ml fast-path``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml import bundle as bundles
from ml.fastpath import FILE, MARGIN, unclear


def add(bundle_dir: str | Path, images: np.ndarray, *, margin: float = MARGIN,
        floor: float | None = None) -> bundles.BundleInfo:
    """Quantise the bundle's ``model.keras`` to int8, calibrated on ``images`` ((N, S, S, 3) uint8 at the
    model's size), and enable the fast path. ``floor`` defaults to half the rejection threshold."""
    import keras

    info = bundles.read(bundle_dir)
    mean, std = float(info.preprocess["mean"]), float(info.preprocess["std"])
    model = keras.models.load_model(info.keras, compile=False)
    calibration = lambda: ([(img[None].astype(np.float32) - mean) / std] for img in images)  # noqa: E731
    (info.path / FILE).write_bytes(bundles.to_tflite(model, calibration))
    if floor is None:
        floor = float(info.rejection.get("threshold", 0.0)) / 2
    return bundles.update(info.path, fast_path={"file": FILE, "margin": margin, "floor": round(floor, 4),
                                                "calibration_photos": len(images)})


def calibration_images(train: list, negatives: list[str], size: int) -> np.ndarray:
    """The training photos and training negatives, decoded at the model's size: what int8 is calibrated on."""
    from ml.data import Sample
    from ml.pipeline import load_arrays

    return load_arrays(list(train) + [Sample(path, 0) for path in negatives], size)


def add_from_dataset(bundle_dir: str | Path, data_dir: str, negatives: str | None = None, **rule) -> bundles.BundleInfo:
    """``add``, calibrated on the bundle's own training photos (and training negatives)."""
    from ml.data import scan, split, split_negatives, subset

    info = bundles.read(bundle_dir)
    settings = info.extra.get("split", {})
    dataset = subset(scan(data_dir), info.labels, allow_missing=True)
    train = split(dataset, **{k: settings[k] for k in ("test_fraction", "val_fraction", "seed") if k in settings}).train
    train_negatives = split_negatives(negatives, settings.get("seed", 1337))["train"]
    return add(bundle_dir, calibration_images(train, train_negatives, int(info.preprocess["size"])), **rule)


def compare(bundle_dir: str | Path, data_dir: str, negatives: str | None = None) -> dict:
    """Float model alone vs the fast path on the validation and test photos (and negatives): answers that
    differ (landmark or rejection), top-1 / top-5 of each, and the share of photos the float model saw again."""
    from ml.data import scan, split, split_negatives, subset
    from ml.predictor import Predictor

    exact = Predictor(bundle_dir, runtime="litert", fast_path=False)
    fast = Predictor(bundle_dir, runtime="litert")
    if fast.fast_path is None:
        raise bundles.BundleError(f"{bundle_dir} has no fast path (python -m ml fast-path)")
    settings = exact.info.extra.get("split", {})
    seed = settings.get("seed", 1337)
    parts = split(subset(scan(data_dir), exact.labels, allow_missing=True),
                  **{k: settings[k] for k in ("test_fraction", "val_fraction", "seed") if k in settings})
    neg = split_negatives(negatives, seed)
    groups: dict[str, list[tuple[str, str | None]]]
    groups = {"validation photos": [(s.path, exact.labels[s.label]) for s in parts.val],
              "validation negatives": [(f, None) for f in neg["val"]],
              "test photos": [(s.path, exact.labels[s.label]) for s in parts.test],
              "test negatives": [(f, None) for f in neg["test"]]}
    out = {}
    for name, rows in groups.items():
        if not rows:
            continue
        answers: dict[str, list] = {"float": [], "fast path": []}
        sent = 0
        for i in range(0, len(rows), 64):
            batch = exact.preprocess([f for f, _ in rows[i: i + 64]])
            answers["float"] += exact.predict_batch(batch)
            answers["fast path"] += fast.predict_batch(batch)
            sent += int(unclear(fast.fast_arrays(batch)[0], len(fast.labels), **fast.fast_path, tiers=fast.tiers).sum())
        truth = [t for _, t in rows]
        result = {"photos": len(rows), "sent_to_float": round(sent / len(rows), 3),
                  "answers_differ": sum((a.label, a.tier) != (b.label, b.tier)
                                        for a, b in zip(answers["float"], answers["fast path"], strict=False))}
        for kind, preds in answers.items():
            if truth[0] is None:
                result[f"{kind}: rejected"] = round(float(np.mean([p.label is None for p in preds])), 4)
            else:
                pairs = list(zip(preds, truth, strict=False))
                result[f"{kind}: top-1"] = round(float(np.mean([p.top5[0][0] == t for p, t in pairs])), 4)
                result[f"{kind}: top-5"] = round(float(np.mean([t in {k for k, _ in p.top5} for p, t in pairs])), 4)
        out[name] = result
    return out


def main(args) -> int:
    if not args.compare_only:
        info = add_from_dataset(args.bundle, args.data, args.negatives, margin=args.margin or MARGIN)
        print(f"fast path written to {info.path / FILE} (version {info.version} unchanged)")
    print(json.dumps(compare(args.bundle, args.data, args.negatives), indent=1))
    return 0
