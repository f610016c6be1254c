"""One photo's answer: the one type every step of ``ml`` hands on, from the model's ranking to what a worker stores.

Each step returns a ``Result`` with what it adds, never changing the one it was given (``dataclasses.replace``):

- ``ml.predictor``: the classifier's ranking, tier, suggestions and embedding (``mirror``: the flipped photo's);
- ``ml.fewshot``: a reference match may take over the answer (``matched_by="reference"``);
- ``ml.location``: where the photo was taken weighs the ranking (``position``, ``distance_km``);
- ``ml.serving``: the few-shot ``signature``, "places that look like this" and the batch it ran in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MATCHED_BY = ("classifier", "reference")


@dataclass
class Result:
    label: str | None  # landmark key (class key or enrolled slug) of a sure or maybe answer; None: unknown
    score: float  # the best landmark's probability, or the cosine similarity of a reference match
    top5: list[tuple[str, float]]  # the classifier's raw ranking (location-weighed only in ``score``)
    tier: str = "unknown"  # ml.tiers: "sure", "maybe" or "unknown"; a reference match is never sure
    suggestions: list[str] = field(default_factory=list)  # maybe: the candidates; unknown: the closest landmarks
    matched_by: str = "classifier"  # MATCHED_BY
    embedding: np.ndarray | None = field(default=None, repr=False)  # the model's, for few-shot signatures
    mirror: Result | None = field(default=None, repr=False)  # the mirrored photo's, for few-shot signatures
    signature: np.ndarray | None = field(default=None, repr=False)  # ml.fewshot.signature: stored for references
    position: str | None = None  # ml.location.POSITIONS: "near", "far", "abroad"; None: no GPS position
    distance_km: float | None = None  # from where it was taken to the answered landmark
    places: list = field(default_factory=list)  # [[landmark key, similarity], ...] like the photo (not sure only)
    version: str = ""  # the model version that answered
    batch_size: int = 1  # how many photos the model ran with it
    model_ms: float = 0.0  # that batch's model time

    def to_json(self) -> dict:
        """The ``ml predict`` CLI's row: a label only for a sure answer."""
        return {"label": self.label if self.tier == "sure" else None, "tier": self.tier, "score": round(self.score, 4),
                "suggestions": self.suggestions, "top5": [[k, round(p, 4)] for k, p in self.top5]}
