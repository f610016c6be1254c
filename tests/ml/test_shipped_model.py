"""The shipped bundle: complete, small, and right on real photos of its test split (when ../shared exists)."""
import json

import numpy as np
import pytest

from ml import bundle as bundles
from ml.data import scan, split, split_negatives, subset
from ml.predictor import Predictor
from ml.tiers import TIERS
from testsupport.ml_samples import DATASETS, LANDMARKS, NEGATIVES, OUTLIERS

needs_data = pytest.mark.skipif(not LANDMARKS.is_dir(), reason="../shared/data is not present")


def test_shipped_bundle_is_complete_and_small():
    info = bundles.read()
    assert len(info.labels) == 50 and {"Vinh_Ha_Long", "Chua_Mot_Cot"} <= set(info.labels)
    assert {"tiers", "places", "rejection"} <= set(info.extra)  # calibrated answer rules travel with the model
    size = sum(f.stat().st_size for f in info.path.iterdir() if f.is_file())
    assert size <= 50 * 1024 * 1024  # EfficientNet-Lite2: float LiteRT + Keras + int8 fast path
    metrics = json.loads((info.path / "metrics.json").read_text())
    assert metrics["bundle"] == info.version  # the recorded numbers belong to this very model


@needs_data
def test_shipped_model_recognises_held_out_photos_and_rejects_non_landmarks():
    predictor = Predictor()
    seed = predictor.info.extra["split"]["seed"]
    test = split(subset(scan(DATASETS, check_images=False), predictor.labels), seed=seed).test[::4]
    preds = predictor.predict([s.path for s in test])
    assert {p.tier for p in preds} <= set(TIERS)
    correct = np.array([p.top5[0][0] == predictor.labels[s.label] for p, s in zip(preds, test, strict=False)])
    sure = np.array([p.tier == "sure" for p in preds])
    assert correct.mean() >= 0.85, f"top-1 only {correct.mean():.1%} on {len(test)} held-out photos"
    assert correct[sure].mean() >= 0.95, f"sure answers right only {correct[sure].mean():.1%} of the time"
    negatives = split_negatives(str(NEGATIVES), seed)["test"][::4]
    unknown = np.mean([p.tier == "unknown" and p.label is None for p in predictor.predict(negatives)])
    assert unknown >= 0.9, f"only {unknown:.1%} of {len(negatives)} non-landmark photos end 'not known'"


@needs_data
def test_landmarks_the_model_never_saw_are_rarely_sure():
    from ml.data import split_outliers

    predictor = Predictor()
    unseen = split_outliers(str(OUTLIERS), predictor.info.extra["split"]["seed"])["unseen"][::3]
    sure = np.mean([p.tier == "sure" for p in predictor.predict(unseen)])
    assert sure <= 0.15, f"{sure:.1%} of {len(unseen)} photos of foreign landmarks got a sure answer"
