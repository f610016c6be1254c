"""Few-shot enrolment: recognise landmarks the classifier never learnt, from a few reference photos.

Every reference photo is stored as its *signature* with the key of the landmark it shows: the model's
L2-normalised embedding and, with weight ``profile``, the square roots of the classifier's top-5
probabilities (a photo of an unknown landmark is recognisable also by *which* known landmarks it
resembles, and how much), averaged over the photo and its mirror image (``add_mirrors``): two views of
a landmark the model never learnt agree better with its few references than one. A query's signature
is compared with all of them by cosine similarity; a landmark's score is the mean of its ``k`` best
similarities (robust to one odd reference photo). The classifier and the references are then combined
(``combine``):

- the trained landmarks are in the same index, through a few embeddings of their training photos that
  the bundle carries (``references.npz``), so a photo is matched against every landmark on equal terms;
- when the most similar landmark is an enrolled one, at or above ``threshold``, it wins unless the
  classifier is sure (probability ≥ ``override``) of a trained landmark: trained landmarks keep their accuracy;
  or unless the classifier sees no landmark at all (``max_rest``): a blank page is nobody's landmark;
- otherwise the classifier decides, with its own rejection threshold ("not a known landmark").

The numbers were chosen by measurement (``bench/fewshot.py``, ``docs/fewshot.md``); a bundle may carry
its own in ``bundle.json`` under ``"fewshot"``.
"""
from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

import numpy as np

from ml.result import Result


@dataclass(frozen=True)
class FewShotRule:
    # calibrated by bench/fewshot.py on the 50-landmark recipe's leave-ten-out model (docs/fewshot.md)
    threshold: float = 0.45  # cosine similarity a reference match needs
    override: float = 0.80  # classifier probability at which a trained landmark still wins
    k: int = 3  # a landmark's score: the mean of its k most similar reference photos
    profile: float = 0.3  # weight of the classifier's probability profile in a signature
    # A reference match needs the classifier to see *some* landmark: at most this much of its probability
    # outside its top-5 landmarks (mostly the background class, which outlier exposure also trains on
    # foreign landmarks, so a new Vietnamese landmark leaks much of its probability there).
    max_rest: float = 0.9

    @classmethod
    def from_bundle(cls, meta: dict) -> FewShotRule:
        fields = ("threshold", "override", "k", "profile", "max_rest")
        return cls(**{k: v for k, v in (meta.get("fewshot") or {}).items() if k in fields})


def signature(prediction: Result, labels: list[str], profile: float) -> np.ndarray:
    """A photo's few-shot signature: its embedding and, weighted by ``profile``, the square roots of the
    classifier's top-5 probabilities over ``labels`` (what is left in one more slot), averaged with the
    same of its mirror image when the prediction carries one; unit length."""
    vector = _one_view(prediction, labels, profile)
    if prediction.mirror is not None:
        vector = vector + _one_view(prediction.mirror, labels, profile)
    return vector / np.linalg.norm(vector)


def reference_may_win(prediction: Result, rule: FewShotRule) -> bool:
    """Whether the classifier leaves room for an enrolled landmark: it is not sure of a trained landmark
    (below ``override``) and it sees some landmark (``max_rest``). Otherwise the signature cannot matter."""
    top_prob = prediction.top5[0][1] if prediction.top5 else 0.0
    rest = 1.0 - sum(prob for _, prob in prediction.top5)
    return top_prob < rule.override and rest <= rule.max_rest


def add_mirrors(predictor, batch: np.ndarray, predictions: list[Result]) -> None:
    """Give each prediction its mirror view: the model on the horizontally flipped batch (normalised arrays;
    the float model even where an int8 fast path serves, as signatures are compared with stored ones)."""
    if len(predictions):
        flipped = np.ascontiguousarray(batch[:, :, ::-1])  # (N, H, W, C): W reversed
        for prediction, mirror in zip(predictions, predictor.predict_batch(flipped, exact=True), strict=False):
            prediction.mirror = mirror


def predict_with_mirrors(predictor, images: list) -> list[Result]:
    """Results of images (paths, bytes or decoded) that carry their mirror view, for stored signatures."""
    out = []
    for start in range(0, len(images), predictor.max_batch):
        batch = predictor.preprocess(images[start: start + predictor.max_batch])
        predictions = predictor.predict_batch(batch, exact=True)
        add_mirrors(predictor, batch, predictions)
        out += predictions
    return out


def _one_view(prediction: Result, labels: list[str], profile: float) -> np.ndarray:
    column = {key: i for i, key in enumerate(labels)}
    probs = np.zeros(len(labels) + 1, np.float32)
    for key, prob in prediction.top5:
        probs[column[key]] = prob
    probs[-1] = max(0.0, 1.0 - float(probs.sum()))
    vector = np.concatenate([np.asarray(prediction.embedding, np.float32), profile * np.sqrt(probs)])
    return vector / np.linalg.norm(vector)


class ReferenceIndex:
    """Reference embeddings grouped by landmark key; ``best`` finds the most similar landmark per query."""

    def __init__(self, keys: list[str], embeddings: np.ndarray, k: int = 3):
        self.k = k
        self.keys = sorted(set(keys))
        owner = {key: i for i, key in enumerate(self.keys)}
        self.owners = np.array([owner[key] for key in keys], dtype=np.int64)
        emb = np.asarray(embeddings, np.float32).reshape(len(keys), -1)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.embeddings = emb / np.where(norms == 0, 1, norms)

    def __len__(self) -> int:
        return len(self.owners)

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(queries, landmarks): each landmark's mean of its ``k`` best cosine similarities."""
        sims = np.asarray(queries, np.float32) @ self.embeddings.T
        out = np.full((len(sims), len(self.keys)), -1.0, np.float32)
        for j in range(len(self.keys)):
            own = sims[:, self.owners == j]
            k = min(self.k, own.shape[1])
            out[:, j] = -np.sort(-own, axis=1)[:, :k].mean(1)  # the k largest, averaged
        return out

    def best(self, queries: np.ndarray, scores: np.ndarray | None = None) -> list[tuple[str | None, float]]:
        """The most similar landmark of each query (``scores``: their ``scores`` when already computed)."""
        if not len(self):
            return [(None, -1.0)] * len(queries)
        s = self.scores(queries) if scores is None else scores
        j = s.argmax(1)
        return [(self.keys[i], float(s[n, i])) for n, i in enumerate(j)]


def combine(prediction: Result, reference: tuple[str | None, float], rule: FewShotRule,
            trained: AbstractSet[str] = frozenset()) -> Result:
    """The classifier's prediction and the best reference match → the answer (the prediction itself when
    the classifier keeps it)."""
    key, similarity = reference
    if key is not None and key not in trained and similarity >= rule.threshold and reference_may_win(prediction, rule):
        # few-shot matching is right ~9 times in 10 (docs/fewshot.md): never a sure answer
        return replace(prediction, label=key, score=similarity, tier="maybe", suggestions=[key],
                       matched_by="reference")
    return prediction


def decide_all(predictions: list[Result], index: ReferenceIndex | None, rule: FewShotRule,
               labels: list[str], signatures: np.ndarray | None = None,
               scores: np.ndarray | None = None) -> list[Result]:
    """``combine`` for a batch (no index or an empty one: the classifier alone). ``labels``: the
    classifier's own landmarks, left to the classifier when they are the most similar. ``scores``:
    ``index.scores(signatures)`` when the caller has them already."""
    if index is None or not len(index):
        return [combine(p, (None, -1.0), rule) for p in predictions]
    if signatures is None:
        signatures = np.stack([signature(p, labels, rule.profile) for p in predictions])
    return [combine(p, m, rule, set(labels)) for p, m in zip(predictions, index.best(signatures, scores), strict=False)]


REFERENCES_FILE = "references.npz"  # in a bundle: a few signatures per trained landmark


def select_references(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of up to ``per_class`` photos of each class (seeded): the trained landmarks' references."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)])


def save_references(bundle_dir, keys: list[str], signatures: np.ndarray) -> None:
    np.savez_compressed(f"{bundle_dir}/{REFERENCES_FILE}", keys=np.array(keys),
                        signatures=np.asarray(signatures, np.float16))


def load_references(bundle_dir) -> tuple[list[str], np.ndarray]:
    """The bundle's trained-landmark references ([], empty) when it has none."""
    from pathlib import Path

    path = Path(bundle_dir) / REFERENCES_FILE
    if not path.exists():
        return [], np.zeros((0, 0), np.float32)
    with np.load(path) as saved:
        return [str(k) for k in saved["keys"]], saved["signatures"].astype(np.float32)
