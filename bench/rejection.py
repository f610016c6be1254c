"""Which "not a known landmark" rule works best? Measured on a bundle's test split.

    python bench/rejection.py --bundle ml/shipped/landmarks-vn20 \
        --data ../shared/data/landmarks-vn20 --negatives ../shared/data/negatives [--leave-out 4]

Rules compared (each thresholded so that 97 % of the *calibration* negatives are rejected, then
measured on the *test* landmarks and test negatives):
  max_prob      top landmark probability of the model trained with a background class (shipped rule)
  max_prob_fg   the same probabilities renormalised without the background column
  prototype     cosine similarity of the embedding to the nearest class mean (train photos)
  energy        -logsumexp of the landmark logits (log-probabilities up to a constant)
``--leave-out K`` also trains a quick model without K classes and reports how many photos of
those never-seen landmarks each rule rejects (the hardest unknowns: landmarks we don't know).
Results go to docs/rejection.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.data import Split, scan, split, split_negatives, subset  # noqa: E402
from ml.evaluate import THRESHOLDS  # noqa: E402
from ml.predictor import Predictor  # noqa: E402


def outputs(predictor: Predictor, paths: list[str]):
    probs, embs = [], []
    for i in range(0, len(paths), 64):
        p, e = predictor.predict_arrays(predictor.preprocess(paths[i: i + 64]))
        probs.append(p), embs.append(e)
    return np.concatenate(probs), np.concatenate(embs)


def rule_scores(probs, embs, k: int, prototypes) -> dict[str, np.ndarray]:
    fg = probs[:, :k] / probs[:, :k].sum(1, keepdims=True)
    return {
        "max_prob": probs[:, :k].max(1),
        "max_prob_fg": fg.max(1),
        "prototype": (embs @ prototypes.T).max(1),
        "energy": np.log(np.clip(probs[:, :k], 1e-12, None)).max(1),  # monotone in the top logit margin
    }


def threshold_for(scores: np.ndarray, min_rejected: float = 0.97) -> float:
    candidates = np.unique(np.concatenate([scores, THRESHOLDS]))
    return float(next(t for t in candidates if np.mean(scores < t) >= min_rejected))


def study(bundle: str, data: str, negatives: str, classes: list[str] | None = None) -> tuple[dict, Predictor, Split]:
    predictor = Predictor(bundle, runtime="litert")
    seed = predictor.info.extra.get("split", {}).get("seed", 1337)
    dataset = scan(data)
    k = len(predictor.labels)
    data_split = split(subset(dataset, predictor.labels), seed=seed)
    _, train_emb = outputs(predictor, [s.path for s in data_split.train])
    train_labels = np.array([s.label for s in data_split.train])
    prototypes = np.stack([train_emb[train_labels == c].mean(0) for c in range(k)])
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)

    neg = split_negatives(negatives, seed)
    groups = {"calibration negatives": neg["val"], "test negatives": neg["test"]}
    groups["test landmarks"] = [s.path for s in data_split.test]
    unseen = [s.path for s in dataset.samples if dataset.classes[s.label] not in predictor.labels]
    if unseen:
        groups["unseen landmarks"] = unseen
    scored = {name: rule_scores(*outputs(predictor, paths), k, prototypes) for name, paths in groups.items()}
    test_probs, _ = outputs(predictor, groups["test landmarks"])
    correct = test_probs[:, :k].argmax(1) == np.array([s.label for s in data_split.test])
    results = {}
    for rule in scored["test negatives"]:
        t = threshold_for(scored["calibration negatives"][rule])
        accepted = scored["test landmarks"][rule] >= t
        row = {"threshold": t,
               "test negatives rejected": float(np.mean(scored["test negatives"][rule] < t)),
               "test landmarks accepted and correct": float(np.mean(accepted & correct)),
               "test landmarks accepted": float(np.mean(accepted))}
        if unseen:
            row["unseen landmarks rejected"] = float(np.mean(scored["unseen landmarks"][rule] < t))
        results[rule] = row
    return results, predictor, data_split


def held_out_classes(data: str, k_out: int) -> list[str]:
    """Every ⌊n/k⌋-th class of the dataset: the landmarks a leave-classes-out model never sees."""
    classes = scan(data, check_images=False).classes
    return classes[:: max(1, len(classes) // k_out)][:k_out]


def leave_out_bundle(data: str, negatives: str, k_out: int, work: Path, weights: str | None) -> tuple[str, list[str]]:
    """The production recipe trained without ``k_out`` classes; reused when ``work`` already holds it."""
    from ml.train import TrainConfig, package, run

    out_classes = held_out_classes(data, k_out)
    bundle = work / "bundle"
    if not (bundle / "bundle.json").exists():
        classes = scan(data, check_images=False).classes
        cfg = TrainConfig(data=data, arch="mobilenetv2", out=str(work / "run"), negatives=negatives,
                          weights=weights, classes=[c for c in classes if c not in out_classes])
        package(run(cfg), cfg, bundle, fast_path=False)
    return str(bundle), out_classes


def table(results: dict) -> list[str]:
    cols = list(next(iter(results.values())))
    lines = ["| rule | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for rule, row in results.items():
        lines.append(f"| {rule} | " + " | ".join(f"{row[c]:.3f}" if c == "threshold" else f"{row[c]:.1%}" for c in cols) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--data", required=True)
    ap.add_argument("--negatives", required=True)
    ap.add_argument("--leave-out", type=int, default=0, help="also measure K never-seen landmark classes")
    ap.add_argument("--weights", help="ImageNet weights for the leave-out model")
    ap.add_argument("--work", default="runs/rejection")
    ap.add_argument("--doc", default="docs/rejection.md")
    args = ap.parse_args()

    results, predictor, _ = study(args.bundle, args.data, args.negatives)
    lines = ["# Rejecting photos that are not a known landmark", "",
             f"Measured by `python bench/rejection.py` on bundle `{predictor.version}`. Each rule's threshold "
             "is set on the calibration negatives (97 % rejected), then applied to the test split.", "",
             "## Shipped model", "", *table(results), ""]
    print("\n".join(table(results)))
    if args.leave_out:
        bundle, held_out = leave_out_bundle(args.data, args.negatives, args.leave_out, Path(args.work), args.weights)
        lco, _, _ = study(bundle, args.data, args.negatives)
        lines += [f"## Leave-classes-out: a model trained without {', '.join(held_out)}", "",
                  "The 'unseen landmarks' column is the share of all photos of those classes rejected: "
                  "real landmarks the model never learnt, the hardest kind of unknown.", "", *table(lco), ""]
        print("\n".join(table(lco)))
    Path(args.doc).write_text("\n".join(lines))
    print(f"written to {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
