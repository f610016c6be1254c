"""Where the photo was taken, as evidence: the photo's GPS position against the catalog landmarks' positions.

``locate`` is a pure function of one answer (``ml.result.Result``: the classifier's top-5, tier and
suggestions), the catalog's coordinates (landmark key → lat, lon), the photo's position and a rule:

- **prior over distance**: each top-5 candidate's probability is multiplied by
  ``w(d) = floor + (1 - floor) · exp(-(d / scale_km)²)`` of its distance ``d`` from the photo (candidates
  without coordinates, and the probability left outside the top-5 — mostly "not a landmark" — keep theirs),
  renormalised, and the bundle's tier rule (``ml.tiers.answer``) decides on that ranking. The floor keeps a
  wrong position (a phone's stale fix) from wiping out what the picture clearly shows;
- a **sure** answer also needs the picture's own agreement: the same best landmark as without the position,
  at a probability of at least ``own_sure``: a wrong position can lower a right answer to "maybe", never turn
  it into a wrong sure one;
- **far**: farther than ``far_km`` from every catalog landmark: never sure;
- **abroad**: outside Vietnam (the caller's knowledge: ``ml`` has no outline) and far from every landmark:
  "not a landmark we know" unless the picture's own probability reaches ``unmistakable`` (then "maybe").

No position: the answer as it is, untouched. The numbers are calibrated by ``bench/location.py`` on GPS-tagged
copies of the shipped bundle's validation photos (``docs/location.md``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ml.result import Result
from ml.tiers import TierRule, answer

EARTH_RADIUS_KM = 6371.0088
POSITIONS = ("near", "far", "abroad")


@dataclass(frozen=True)
class LocationRule:
    # calibrated by bench/location.py on the shipped bundle's validation photos (docs/location.md)
    scale_km: float = 20.0  # prior: a candidate this far keeps floor + 37 % of the rest of its weight
    floor: float = 0.5  # prior of a candidate far away: never below this (a wrong position)
    far_km: float = 30.0  # farther than this from every catalog landmark: "far", never sure (set, not fitted)
    own_sure: float = 0.5  # a sure answer's probability from the picture alone (its best landmark too)
    unmistakable: float = 0.58  # abroad: the picture's own probability that still names a landmark (maybe)


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (numpy-broadcast over arrays of degrees)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def prior(distance_km: float, rule: LocationRule) -> float:
    """How much more likely a candidate this far from the photo stays (1 at the spot, ``floor`` far away)."""
    return rule.floor + (1.0 - rule.floor) * math.exp(-((distance_km / rule.scale_km) ** 2))


def locate(result: Result, position: tuple[float, float] | None, catalog: Mapping[str, tuple[float, float]],
           tiers: TierRule, rule: LocationRule = LocationRule(), abroad: bool = False) -> Result:
    """The location-aware answer of a photo taken at ``position`` (lat, lon; None: not known, and ``result``
    is returned as it is), with ``position`` ("near", "far", "abroad") and ``distance_km`` to its landmark.

    ``catalog``: every catalog landmark's position by model key (class key or enrolled slug); ``tiers``: the
    bundle's rule; ``abroad``: whether ``position`` is outside Vietnam."""
    if position is None:
        return result
    keys = list(catalog)
    spots = np.asarray([catalog[k] for k in keys], np.float64).reshape(-1, 2)
    km = dict(zip(keys, haversine_km(position[0], position[1], spots[:, 0], spots[:, 1]).tolist(), strict=False))
    nearest = min(km.values(), default=math.inf)
    where = "near" if nearest <= rule.far_km else ("abroad" if abroad else "far")
    if result.matched_by == "reference":  # a few-shot match: a maybe already, its similarity no probability
        located = result if where != "abroad" else _unknown(result, result.top5, result.score)
    else:
        located = _weighed(result, km, where, tiers, rule)
    distance = km.get(located.label) if located.tier != "unknown" and located.label else None
    return replace(located, position=where, distance_km=round(distance, 3) if distance is not None else None)


def _weighed(result: Result, km: dict, where: str, tiers: TierRule, rule: LocationRule) -> Result:
    top5 = result.top5
    if not top5:
        return result
    own_best, own_prob = top5[0]
    rest = max(0.0, 1.0 - sum(p for _, p in top5))
    weighted = [(key, p * (prior(km[key], rule) if key in km else 1.0)) for key, p in top5]
    total = sum(p for _, p in weighted) + rest
    ranked = sorted(((key, p / total if total > 0 else p) for key, p in weighted), key=lambda kp: -kp[1])
    if where == "abroad" and own_prob < rule.unmistakable:
        return _unknown(result, ranked, ranked[0][1])
    found = answer(ranked, tiers)
    if found.tier == "sure" and not (where == "near" and found.label == own_best and own_prob >= rule.own_sure):
        found = answer(ranked, replace(tiers, sure=math.inf))  # the picture does not back it: maybe at most
    label = found.suggestions[0] if found.tier != "unknown" else None
    return replace(result, label=label, score=ranked[0][1], tier=found.tier, suggestions=found.suggestions)


def _unknown(result: Result, ranked: list, score: float) -> Result:
    return replace(result, label=None, score=score, tier="unknown", suggestions=[k for k, _ in ranked[:3]])
