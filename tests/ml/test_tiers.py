"""Answer tiers (ml/tiers.py: sure / maybe / unknown, their calibration) and places that look like a
photo (ml/places.py): pure functions of numbers, tested on hand-made and synthetic examples."""
import numpy as np
import pytest

from ml.places import PlacesRule, similar_places
from ml.tiers import TierRule, answer, calibrate, tiers_of

RULE = TierRule(sure=0.6, maybe=0.2, margin=0.1, second=0.5)


@pytest.mark.parametrize("top5, tier, suggestions", [
    ([("A", 0.8), ("B", 0.1)], "sure", ["A"]),
    ([("A", 0.65), ("B", 0.6)], "maybe", ["A", "B"]),  # probable enough, but not far enough ahead
    ([("A", 0.5), ("B", 0.2)], "maybe", ["A"]),  # the runner-up has under half of the best's probability
    ([("A", 0.15), ("B", 0.1), ("C", 0.05), ("D", 0.01)], "unknown", ["A", "B", "C"]),
    ([], "unknown", []),
])
def test_answer_per_tier(top5, tier, suggestions):
    got = answer(top5, RULE)
    assert (got.tier, got.suggestions) == (tier, suggestions)
    assert got.label == ("A" if tier == "sure" else None)


def test_a_sure_answer_may_also_need_the_photo_to_look_like_its_landmark():
    rule = TierRule(sure=0.6, maybe=0.2, min_similarity=0.7)
    top5 = [("A", 0.9), ("B", 0.05)]
    assert [answer(top5, rule, s).tier for s in (0.5, 0.7, None)] == ["maybe", "sure", "sure"]


def test_a_bundle_without_tiers_keeps_its_rejection_threshold():
    rule = TierRule.from_bundle({"rejection": {"threshold": 0.2}})
    assert answer([("A", 0.3), ("B", 0.29)], rule).tier == "sure"  # no "maybe" with old bundles
    assert answer([("A", 0.19), ("B", 0.1)], rule).tier == "unknown"
    assert TierRule.from_bundle({"tiers": {"sure": 0.7, "maybe": 0.3, "unused": 1}}) == TierRule(sure=0.7, maybe=0.3)


@pytest.mark.parametrize("rule", [RULE, TierRule(sure=0.4, maybe=0.25), TierRule(sure=0.5, maybe=0.3, margin=0.2,
                                                                                 min_similarity=0.6)])
def test_tiers_of_agrees_with_answer(rule):
    rng = np.random.default_rng(0)
    probs = np.concatenate([rng.dirichlet(np.full(12, 0.3), 200), rng.dirichlet(np.full(12, 3.0), 200)])  # peaked, flat
    similarity = rng.uniform(0.3, 0.9, 400)
    labels = [f"L{i}" for i in range(12)]
    tiers = tiers_of(probs, rule, similarity)
    for row, sim, tier in zip(probs, similarity, tiers, strict=False):
        order = np.argsort(-row)[:5]
        assert ("sure", "maybe", "unknown")[tier] == answer([(labels[i], float(row[i])) for i in order], rule, sim).tier
    assert set(tiers) == {0, 1, 2}  # every tier occurs: the comparison covered them all


def synthetic_calibration():
    """Known landmarks: 100 photos at 0.95 and 100 at 0.75, all right; 50 at 0.55, half of them wrong (their
    leads look the same). Landmarks that are not ours: 50 photos at 0.45."""
    rows = [[0.95, 0.04, 0.01]] * 100 + [[0.75, 0.2, 0.05]] * 100 + [[0.55, 0.4, 0.05]] * 50
    labels = [0] * 225 + [1] * 25
    others = np.array([[0.45, 0.3, 0.25]] * 50)
    return np.array(rows), np.array(labels), others


def test_calibrate_reaches_its_precision_with_the_most_correct_sure_answers():
    known, labels, others = synthetic_calibration()
    rule = calibrate(known, labels, others, maybe=0.3)
    k_sure, o_sure = tiers_of(known, rule) == 0, tiers_of(others, rule) == 0
    right = int((k_sure & (known.argmax(1) == labels)).sum())
    assert right / (k_sure.sum() + o_sure.sum()) >= 0.98
    assert right == 200  # the 0.75 photos too, not only the 0.95 ones (a stricter rule also reaching 98 %)
    assert not k_sure[200:].any() and not o_sure.any()
    assert rule.maybe == 0.3 and rule.calibration["known"] == 250


def test_calibrate_makes_nothing_sure_when_no_rule_is_precise_enough():
    known, labels, others = synthetic_calibration()
    rule = calibrate(known, 1 - labels, others, maybe=0.3)  # every argmax is wrong now
    assert rule.sure == 1.0 and not (tiers_of(known, rule) == 0).any()


KEYS = ["a", "b", "c", "d", "e"]
SCORES = np.array([0.3, 0.8, 0.55, 0.7, 0.1])


def test_similar_places_are_the_three_most_similar_above_the_floor():
    assert similar_places(SCORES, KEYS, PlacesRule(min_similarity=0.5)) == [("b", 0.8), ("d", 0.7), ("c", 0.55)]
    assert similar_places(SCORES, KEYS, PlacesRule(min_similarity=0.81)) == []  # looks like no landmark's photos
    assert similar_places(np.zeros(0), [], PlacesRule()) == []


def test_similar_places_leave_out_the_landmarks_already_named():
    assert similar_places(SCORES, KEYS, PlacesRule(min_similarity=0.5), exclude=("b",)) == [
        ("d", 0.7), ("c", 0.55), ("a", 0.3)]
    assert PlacesRule.from_bundle({"places": {"min_similarity": 0.62, "other": 1}}) == PlacesRule(min_similarity=0.62)
    assert PlacesRule.from_bundle({}) == PlacesRule()
