"""Few-shot matching rules on hand-made vectors: signatures, the reference index, the combination."""
import numpy as np
import pytest

from ml.fewshot import FewShotRule, ReferenceIndex, combine, decide_all, signature
from ml.predictor import Prediction

LABELS = ["Alpha_Gate", "Beta_Tower"]


def prediction(embedding, top5, label=None) -> Prediction:
    vector = np.asarray(embedding, np.float32)
    return Prediction(label, top5[0][1] if top5 else 0.0, top5, vector / np.linalg.norm(vector))


def test_a_signature_is_the_embedding_plus_the_weighted_probability_profile():
    p = prediction([3, 4], [("Beta_Tower", 0.64), ("Alpha_Gate", 0.0)])
    plain = signature(p, LABELS, 0.0)
    assert np.allclose(plain, [0.6, 0.8, 0, 0, 0])
    weighted = signature(p, LABELS, 1.0)
    assert np.isclose(np.linalg.norm(weighted), 1.0)
    # sqrt of (alpha 0, beta 0.64, the rest 0.36) next to the embedding, then normalised
    assert np.allclose(weighted * np.sqrt(2), [0.6, 0.8, 0.0, 0.8, 0.6])


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
