"""An int8 fast path for a float bundle, with the float model as the judge of the unclear photos.

Full int8 quantisation makes the LiteRT model 2.4× faster on CPUs with int8 dot products (AVX-512
VNNI; barely faster on AVX2 alone), but it moves a few photos across the shipped quality bar (top-1
−0.2 to −0.5 point, top-5 one photo short). The fast path keeps the float model's answers: every
photo goes through the int8 model first, and only the unclear ones also through the float model,
whose answer then stands:

- the int8 model's two best landmarks are less than ``margin`` apart (the ranking could change), and
- its best landmark has at least ``floor`` (a photo far below the rejection threshold is rejected
  either way);
- or, with answer tiers (``ml.tiers``), its best probability or its lead over the second is within
  ``TIER_BAND`` of the bar of a sure answer (the tier could change).

This module is the rule, used by ``ml.predictor`` at serving time. ``ml.quantize`` builds the int8
model (``model.int8.tflite`` beside ``model.tflite``, the rule into ``bundle.json``; the version id does not
change: it names the float model, whose decisions the fast path keeps) and measures how often the two
answer differently.
"""
from __future__ import annotations

import numpy as np

FILE = "model.int8.tflite"
MARGIN = 0.2  # from 0.15 on, no answer differs from the float model's on validation or test (docs/performance.md)
TIER_BAND = 0.1


def unclear(probs: np.ndarray, n_labels: int, margin: float, floor: float, tiers=None) -> np.ndarray:
    """Rows of int8 probabilities that the float model must decide (see the module docstring);
    ``tiers``: the bundle's ``ml.tiers.TierRule``."""
    landmarks = probs[:, :n_labels]
    if n_labels < 2:
        return np.ones(len(probs), bool)
    best_two = np.partition(landmarks, -2, axis=1)[:, -2:]
    best, lead = best_two[:, 1], best_two[:, 1] - best_two[:, 0]
    redo = (lead < margin) & (best >= floor)
    if tiers is not None and tiers.sure > tiers.maybe:
        redo |= (np.abs(best - tiers.sure) < TIER_BAND) | ((np.abs(lead - tiers.margin) < TIER_BAND) & (best >= floor))
    return redo
