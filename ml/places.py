""""Places that look like this": the catalog landmarks whose photos a visitor's photo most resembles.

For a photo the recogniser is not sure of, the landmarks are ranked by few-shot similarity
(``ml.fewshot.ReferenceIndex.scores``: each landmark's mean of its k most similar reference photos,
trained landmarks through the bundle's ``references.npz``, enrolled ones through their reference
photos). A photo that is not a place at all (a face, a room, a screenshot) resembles no landmark's
photos closely: suggestions need the best similarity to reach ``min_similarity``, calibrated so that
most non-landmark photos get none (``bench/rejection.py``; ``bundle.json`` under ``"places"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COUNT = 3  # suggestions shown


@dataclass(frozen=True)
class PlacesRule:
    min_similarity: float = 0.5  # the best landmark's similarity a photo needs to get suggestions
    count: int = COUNT

    @classmethod
    def from_bundle(cls, meta: dict) -> PlacesRule:
        fields = ("min_similarity", "count")
        return cls(**{k: v for k, v in (meta.get("places") or {}).items() if k in fields})


def landmark_outputs(predictor, paths: list, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For calibration and benchmarks: the float model's landmark probabilities of photos, each photo's
    few-shot similarity to its best landmark's trained photos, and its best similarity to any landmark's
    (the bundle's ``references.npz``; as the worker scores a photo that has no mirror view)."""
    from ml.fewshot import FewShotRule, ReferenceIndex, load_references, signature

    keys, refs = load_references(predictor.info.path)
    k = len(predictor.labels)
    if not paths:
        return np.zeros((0, k)), np.zeros(0), np.zeros(0)
    rule = FewShotRule.from_bundle(predictor.info.extra)
    index = ReferenceIndex(keys, refs, rule.k) if keys else None
    column = np.array([index.keys.index(label) if index and label in index.keys else 0 for label in predictor.labels])
    probs, own, best = [], [], []
    for start in range(0, len(paths), batch):
        p, e = predictor.predict_arrays(predictor.preprocess(paths[start: start + batch]), exact=True)
        probs.append(p[:, :k])
        if index is None:
            own.append(np.full(len(p), -1.0))
            best.append(np.full(len(p), -1.0))
            continue
        scores = index.scores(np.stack([signature(predictor.decide(pi, ei), predictor.labels, rule.profile)
                                        for pi, ei in zip(p, e, strict=False)]))
        own.append(scores[np.arange(len(p)), column[p[:, :k].argmax(1)]])
        best.append(scores.max(1))
    return np.concatenate(probs), np.concatenate(own), np.concatenate(best)


def calibrate_floor(non_landmarks: np.ndarray, max_share: float = 0.10) -> PlacesRule:
    """The lowest floor that leaves at most ``max_share`` of the calibration non-landmark photos
    (their best similarities) with suggestions."""
    ranked = np.sort(np.asarray(non_landmarks, np.float64))
    if not len(ranked):
        return PlacesRule()
    return PlacesRule(min_similarity=float(np.round(ranked[int(np.ceil((1 - max_share) * len(ranked))) - 1] + 5e-4, 3)))


def similar_places(scores: np.ndarray, keys: list[str], rule: PlacesRule,
                   exclude: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """One photo's landmark similarities (``ReferenceIndex.scores`` row, columns ``keys``) → the
    ``rule.count`` most similar landmarks with their similarity, best first; [] when the photo looks
    like no landmark's photos (best similarity under ``rule.min_similarity``). ``exclude``: landmarks
    already named in the answer."""
    scores = np.asarray(scores, np.float32)
    if not len(scores) or float(scores.max()) < rule.min_similarity:
        return []
    order = [int(i) for i in np.argsort(-scores) if keys[int(i)] not in exclude]
    return [(keys[i], round(float(scores[i]), 4)) for i in order[: rule.count]]
