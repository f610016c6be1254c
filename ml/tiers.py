"""Honest answers: every recognition ends "sure", "maybe" or "unknown" (not a landmark we know).

A pure function of the classifier's landmark probabilities (and, when the rule asks for it, of how
similar the photo is to the trained photos of its best landmark), with numbers calibrated per bundle
(``calibrate``; ``bundle.json`` under ``"tiers"``; chosen by ``bench/rejection.py``):

- **sure**: the best landmark's probability is at least ``sure`` and ``margin`` ahead of the second
  (and the photo at least ``min_similarity`` like that landmark's photos). Calibrated so that sure
  answers are right on ≥ 98 % of the calibration photos of known landmarks *and* of landmarks that
  are not ours.
- **maybe**: the best landmark's probability is at least ``maybe`` (the rejection threshold: ≥ 97 % of
  the calibration non-landmark photos fall below it); the answer names the best landmark and, when it
  has ``second`` of the best's probability, the runner-up.
- **unknown**: everything else; the closest landmarks are still given as suggestions.

Bundles without a ``"tiers"`` entry keep their single rejection threshold: sure above it, unknown below.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

TIERS = ("sure", "maybe", "unknown")
SURE_PRECISION = 0.98  # sure answers must be right this often on the calibration photos


@dataclass(frozen=True)
class TierRule:
    sure: float  # best landmark probability for a sure answer
    maybe: float  # below this: not a landmark we know
    margin: float = 0.0  # a sure answer's lead over the second landmark
    min_similarity: float = -1.0  # a sure answer's similarity to its landmark's trained photos (-1: unused)
    second: float = 0.5  # a maybe answer also names the runner-up at this share of the best's probability
    calibration: dict = field(default_factory=dict, compare=False)  # what the numbers were chosen on

    @classmethod
    def from_bundle(cls, meta: dict) -> TierRule:
        tiers = meta.get("tiers")
        if tiers:
            return cls(**{k: v for k, v in tiers.items() if k in cls.__dataclass_fields__})
        threshold = float((meta.get("rejection") or {}).get("threshold", 0.0))
        return cls(sure=threshold, maybe=threshold)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    tier: str  # one of TIERS
    label: str | None  # the landmark, for a sure answer only
    suggestions: list[str]  # maybe: the candidates (best first); unknown: the closest landmarks


def answer(top5: list[tuple[str, float]], rule: TierRule, similarity: float | None = None) -> Answer:
    """The tier of a classifier ranking (landmark keys with probabilities, best first)."""
    if not top5:
        return Answer("unknown", None, [])
    (best, p1), p2 = top5[0], (top5[1][1] if len(top5) > 1 else 0.0)
    similar = similarity is None or rule.min_similarity <= -1.0 or similarity >= rule.min_similarity
    if p1 >= rule.sure and p1 - p2 >= rule.margin and similar:
        return Answer("sure", best, [best])
    if p1 >= rule.maybe:
        runner_up = [k for k, p in top5[1:2] if p >= rule.second * p1]
        return Answer("maybe", None, [best, *runner_up])
    return Answer("unknown", None, [k for k, _ in top5[:3]])


def tiers_of(probs: np.ndarray, rule: TierRule, similarity: np.ndarray | None = None) -> np.ndarray:
    """``answer``'s tier for a batch of landmark probabilities (N, classes), vectorised: 0 sure, 1 maybe, 2 unknown."""
    top2 = -np.sort(-probs, axis=1)[:, :2]
    p1, p2 = top2[:, 0], (top2[:, 1] if probs.shape[1] > 1 else np.zeros(len(probs)))
    sure = (p1 >= rule.sure) & (p1 - p2 >= rule.margin)
    if similarity is not None and rule.min_similarity > -1.0:
        sure &= similarity >= rule.min_similarity
    return np.where(sure, 0, np.where(p1 >= rule.maybe, 1, 2))


def calibrate(known: np.ndarray, labels: np.ndarray, others: np.ndarray, maybe: float, *,
              known_similarity: np.ndarray | None = None, other_similarity: np.ndarray | None = None,
              precision: float = SURE_PRECISION, use_margin: bool = True, probs_grid=None,
              unknown: np.ndarray | None = None, unknown_similarity: np.ndarray | None = None,
              max_unknown_sure: float = 0.10) -> TierRule:
    """The most permissive sure rule whose sure answers are right ≥ ``precision`` of the time.

    ``known``: landmark probabilities of calibration photos of known landmarks (true ``labels``);
    ``others``: of photos of landmarks that are not ours (any sure answer there is wrong). A grid over
    the probability and margin (and similarity) thresholds; among the rules that reach ``precision``,
    the one with the most sure-and-correct known photos (ties: the stricter on the others).
    ``unknown``: photos of landmarks that look like ours but that the model never learnt (a
    leave-classes-out model's left-out classes): at most ``max_unknown_sure`` of them may be sure.
    """
    correct = known.argmax(1) == labels
    k_top = -np.sort(-known, axis=1)[:, :2]
    o_top = -np.sort(-others, axis=1)[:, :2] if len(others) else np.zeros((0, 2))
    k_lead, o_lead = k_top[:, 0] - k_top[:, 1], o_top[:, 0] - o_top[:, 1]
    u_top = -np.sort(-unknown, axis=1)[:, :2] if unknown is not None and len(unknown) else None
    u_lead = u_top[:, 0] - u_top[:, 1] if u_top is not None else None
    probs = np.round(np.arange(max(maybe, 0.05), 1.0, 0.01), 3) if probs_grid is None else np.asarray(probs_grid)
    margins = np.round(np.arange(0.0, 0.9, 0.05), 3) if use_margin else np.array([0.0])
    with_similarity = known_similarity is not None and other_similarity is not None
    sims = np.round(np.arange(0.2, 0.95, 0.025), 3) if with_similarity else np.array([-1.0])
    best, best_key = None, None
    for s in sims:
        k_sim = known_similarity >= s if s > -1.0 else np.ones(len(known), bool)
        o_sim = other_similarity >= s if s > -1.0 else np.ones(len(others), bool)
        u_sim = (unknown_similarity >= s if s > -1.0 else np.ones(len(u_top), bool)) if u_top is not None else None
        for m in margins:
            k_ok, o_ok = k_sim & (k_lead >= m), o_sim & (o_lead >= m)
            for p in probs:
                k_sure, o_sure = k_ok & (k_top[:, 0] >= p), o_ok & (o_top[:, 0] >= p)
                n_sure = int(k_sure.sum() + o_sure.sum())
                right = int((k_sure & correct).sum())
                if n_sure == 0 or right / n_sure < precision:
                    continue
                if u_top is not None and np.mean(u_sim & (u_lead >= m) & (u_top[:, 0] >= p)) > max_unknown_sure:
                    continue
                key = (right, -int(o_sure.sum()), p)
                if best_key is None or key > best_key:
                    best_key, best = key, (float(p), float(m), float(s))
    p, m, s = best if best else (1.0, 0.0, -1.0)
    calibration = {"precision": precision, "known": int(len(known)), "others": int(len(others))}
    if u_top is not None:
        calibration |= {"unknown": int(len(u_top)), "max_unknown_sure": max_unknown_sure}
    return TierRule(sure=p, maybe=float(maybe), margin=m, min_similarity=s, calibration=calibration)
