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
    def from_bundle(cls, meta: dict) -> "PlacesRule":
        fields = ("min_similarity", "count")
        return cls(**{k: v for k, v in (meta.get("places") or {}).items() if k in fields})


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
