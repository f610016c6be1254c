"""Few-shot matching rules on hand-made vectors: signatures, the reference index, the combination."""
import numpy as np
import pytest

from ml.fewshot import (
    FewShotRule,
    ReferenceIndex,
    combine,
    decide_all,
    predict_with_mirrors,
    reference_may_win,
    signature,
)
from ml.result import Result

LABELS = ["Alpha_Gate", "Beta_Tower"]


def prediction(embedding, top5, label=None) -> Result:
    vector = np.asarray(embedding, np.float32)
    return Result(label, top5[0][1] if top5 else 0.0, top5, embedding=vector / np.linalg.norm(vector))


def test_a_signature_is_the_embedding_plus_the_weighted_probability_profile():
    p = prediction([3, 4], [("Beta_Tower", 0.64), ("Alpha_Gate", 0.0)])
    plain = signature(p, LABELS, 0.0)
    assert np.allclose(plain, [0.6, 0.8, 0, 0, 0])
    weighted = signature(p, LABELS, 1.0)
    assert np.isclose(np.linalg.norm(weighted), 1.0)
    # sqrt of (alpha 0, beta 0.64, the rest 0.36) next to the embedding, then normalised
    assert np.allclose(weighted * np.sqrt(2), [0.6, 0.8, 0.0, 0.8, 0.6])


def test_a_signature_averages_the_photo_and_its_mirror_view():
    p = prediction([3, 4], [("Beta_Tower", 0.64), ("Alpha_Gate", 0.0)])
    m = prediction([4, 3], [("Alpha_Gate", 0.5), ("Beta_Tower", 0.1)])
    one, other = signature(p, LABELS, 0.5), signature(m, LABELS, 0.5)
    p.mirror = m
    both = signature(p, LABELS, 0.5)
    assert np.allclose(both, (one + other) / np.linalg.norm(one + other))
    assert not np.allclose(both, one)


def test_only_photos_an_enrolled_landmark_could_win_need_the_mirror_view():
    rule = FewShotRule(override=0.8, max_rest=0.7)
    assert reference_may_win(prediction([1, 0], [("Alpha_Gate", 0.79), ("Beta_Tower", 0.2)]), rule)
    assert not reference_may_win(prediction([1, 0], [("Alpha_Gate", 0.8)]), rule)  # the classifier is sure
    assert not reference_may_win(prediction([1, 0], [("Alpha_Gate", 0.2), ("Beta_Tower", 0.05)]), rule)  # no landmark


def test_mirror_views_are_the_model_on_mirrored_photos(tiny_bundle):
    from PIL import ImageOps

    from ml.predictor import Predictor
    from testsupport.ml_samples import pattern

    predictor = Predictor(tiny_bundle, runtime="litert", max_batch=2)
    images = [pattern(i % 2, seed=i) for i in range(3)]  # two batches
    with_mirrors = predict_with_mirrors(predictor, images)
    mirrored = predictor.predict([ImageOps.mirror(img) for img in images])
    for ours, theirs in zip(with_mirrors, mirrored, strict=False):
        assert np.allclose(ours.mirror.embedding, theirs.embedding, atol=1e-4)
        assert ours.mirror.top5[0][0] == theirs.top5[0][0]
    assert not all(np.allclose(p.embedding, p.mirror.embedding, atol=1e-3) for p in with_mirrors)  # a second view


def test_a_reference_match_needs_the_classifier_to_see_some_landmark():
    rule = FewShotRule(threshold=0.5, override=0.8, max_rest=0.7)
    landmark_like = prediction([1, 0], [("Alpha_Gate", 0.4), ("Beta_Tower", 0.3)])  # 0.3 left over
    blank_page = prediction([1, 0], [("Alpha_Gate", 0.1), ("Beta_Tower", 0.1)])  # 0.8 left: background
    assert combine(landmark_like, ("new-tower", 0.9), rule, set(LABELS)).matched_by == "reference"
    assert combine(blank_page, ("new-tower", 0.9), rule, set(LABELS)).matched_by == "classifier"


def test_a_landmark_scores_the_mean_of_its_k_most_similar_references():
    refs = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], np.float32)
    index = ReferenceIndex(["a", "a", "b", "b"], refs, k=2)
    scores = index.scores(np.array([[1, 0]], np.float32))
    assert index.keys == ["a", "b"] and np.allclose(scores, [[0.9, 0.3]])
    assert index.best(np.array([[0, 1]], np.float32)) == [("b", pytest.approx(0.9))]


def test_an_enrolled_landmark_wins_only_when_similar_enough_and_the_classifier_is_unsure():
    rule = FewShotRule(threshold=0.5, override=0.8)
    unsure = prediction([1, 0], [("Alpha_Gate", 0.4)], label="Alpha_Gate")
    sure = prediction([1, 0], [("Alpha_Gate", 0.9)], label="Alpha_Gate")
    assert combine(unsure, ("thap-moi", 0.7), rule, set(LABELS)).label == "thap-moi"
    assert combine(unsure, ("thap-moi", 0.7), rule, set(LABELS)).matched_by == "reference"
    assert combine(unsure, ("thap-moi", 0.4), rule, set(LABELS)).label == "Alpha_Gate"  # not similar enough
    assert combine(sure, ("thap-moi", 0.9), rule, set(LABELS)).label == "Alpha_Gate"  # the classifier is sure
    # a trained landmark that is the most similar is left to the classifier (which may reject)
    rejected = prediction([1, 0], [("Beta_Tower", 0.1)], label=None)
    assert combine(rejected, ("Beta_Tower", 0.95), rule, set(LABELS)).label is None


def test_without_references_the_classifier_decides_alone():
    p = prediction([1, 0], [("Beta_Tower", 0.7)], label="Beta_Tower")
    assert [d.label for d in decide_all([p], None, FewShotRule(), LABELS)] == ["Beta_Tower"]
