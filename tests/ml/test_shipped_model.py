"""The shipped bundle: complete, small, and right on real photos of its test split (when ../shared exists)."""
import json

import numpy as np
import pytest

from ml import bundle as bundles
from ml.data import scan, split, split_negatives, subset
from ml.predictor import Predictor
from ml_samples import LANDMARKS, NEGATIVES

needs_data = pytest.mark.skipif(not LANDMARKS.is_dir(), reason="../shared/data is not present")


def test_shipped_bundle_is_complete_and_small():
    info = bundles.read()
    assert len(info.labels) == 20 and "Vinh_Ha_Long" in info.labels
    size = sum(f.stat().st_size for f in info.path.iterdir() if f.is_file())
    assert size <= 40 * 1024 * 1024
    metrics = json.loads((info.path / "metrics.json").read_text())
    assert metrics["bundle"] == info.version  # the recorded numbers belong to this very model


@needs_data
def test_shipped_model_recognises_held_out_photos_and_rejects_non_landmarks():
    predictor = Predictor()
    seed = predictor.info.extra["split"]["seed"]
    test = split(subset(scan(LANDMARKS, check_images=False), predictor.labels), seed=seed).test[::4]
    preds = predictor.predict([s.path for s in test])
    correct = np.mean([p.label == predictor.labels[s.label] for p, s in zip(preds, test)])
    assert correct >= 0.9, f"only {correct:.1%} of {len(test)} held-out photos accepted and correct"
    negatives = split_negatives(str(NEGATIVES), seed)["test"][::4]
    rejected = np.mean([p.label is None for p in predictor.predict(negatives)])
    assert rejected >= 0.9, f"only {rejected:.1%} of {len(negatives)} non-landmark photos rejected"
