"""Few-shot enrolment, measured: recognise landmarks a model never learnt from a few photos each.

    python bench/fewshot.py --bundle runs/lo10/bundle \
        --data ../shared/data/landmarks-vn20 ../shared/data/landmarks-vn30 --negatives ../shared/data/negatives \
        [--outliers ../shared/data/landmarks-elsewhere] [--shots 10] [--min-test 3] [--work runs/fewshot]

1. ``--bundle`` is a leave-classes-out model, trained with the production recipe on the same datasets
   without some landmarks (``python -m ml train ... `` on a subset of the classes): the *new* landmarks
   are the dataset classes its ``labels.json`` lacks. Its split seed (``bundle.json`` "split") gives
   the trained landmarks' validation and test photos and the negatives' calibration and test photos.
2. Each new landmark is enrolled with min(``--shots``, photos − ``--min-test``) photos, chosen
   group-aware (no near-duplicate of an enrolment photo is ever tested); its other photos are the test.
3. The rule's numbers (``ml/fewshot.py``: threshold, override, profile weight and max_rest) are chosen
   on calibration data only: the trained landmarks' validation photos, the calibration negatives and
   leave-one-out over the enrolment photos. ``ml/fewshot.py``'s default rule is measured too.
4. On the test photos: top-1 on the new landmarks (overall, per source folder, per landmark), the share
   of them answered "maybe" with the right landmark (a reference match is always a maybe: what a
   visitor sees), accepted-and-correct and sure-and-correct on the trained landmarks with and without
   enrolment, and negatives (and, with ``--outliers``, the unseen foreign landmarks) rejected.
   Written to docs/fewshot.md (its hand-written "## What limits it" and "## History" sections are kept).
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

from ml.data import scan, source_of, split, split_negatives, split_outliers, subset  # noqa: E402
from ml.fewshot import FewShotRule, ReferenceIndex, combine, predict_with_mirrors, select_references, signature  # noqa: E402
from ml.places import PlacesRule, similar_places  # noqa: E402
from ml.predictor import Predictor  # noqa: E402

TRAINED_REFERENCES = 20  # signatures per trained landmark in the index (what package() stores in a bundle)
PROFILES = (0.0, 0.3, 0.5)  # weights of the classifier's probability profile tried in a signature
THRESHOLDS = np.round(np.arange(0.30, 0.86, 0.025), 3)
OVERRIDES = (0.8, 0.9, 1.01)
# how much of the classifier's probability may lie outside its top 5 (mostly the background class) for a
# reference match: ml/fewshot.py's 0.7 came from the 20-landmark recipe; with outlier exposure the
# background class also takes much of an unseen *Vietnamese* landmark's probability, so it is calibrated too
MAX_RESTS = (0.7, 0.8, 0.9, 1.01)
ARCH_NAMES = {"mobilenetv2": "MobileNetV2", "efficientnet_lite0": "EfficientNet-Lite0"}
KEPT = ("## What limits it", "## History")  # the doc's hand-written part, from the first of these on, is kept


def embed(predictor: Predictor, paths: list[str], cache: dict):
    """Predictions (classifier decision + embedding, with the mirror view) for image files; ``cache`` by path."""
    todo = list(dict.fromkeys(p for p in paths if p not in cache))
    for i in range(0, len(todo), 64):
        cache.update(zip(todo[i: i + 64], predict_with_mirrors(predictor, todo[i: i + 64]), strict=False))
    return [cache[p] for p in paths]


def enrolment(dataset, classes: list[str], shots: int, min_test: int, seed: int) -> tuple[dict, dict]:
    """Per new landmark: min(``shots``, photos − ``min_test``) enrolment photos, whole duplicate groups in a
    seeded order, and the photos of the *other* groups as its test (a group cut by the count is not tested)."""
    rng = random.Random(seed)
    enrol, test = {}, {}
    for name in classes:
        label = dataset.classes.index(name)
        groups = defaultdict(list)
        for s in dataset.samples:
            if s.label == label:
                groups[s.group].append(s.path)
        n = min(shots, sum(map(len, groups.values())) - min_test)
        order = sorted(groups)
        rng.shuffle(order)
        chosen, rest = [], []
        for gid in order:
            (chosen if len(chosen) < n else rest).extend(groups[gid])
        enrol[name], test[name] = chosen[:max(n, 0)], rest
    return enrol, test


def share(flags) -> float:
    flags = list(flags)
    return float(np.mean(flags)) if flags else float("nan")


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


class Matcher:
    """The reference index (trained landmarks' references + the first ``shots`` enrolment photos of each
    new landmark) and its best match per photo, cached: a rule's threshold and override do not change them."""

    def __init__(self, sigs: Signatures, trained_refs: tuple[list, list], enrol_preds: dict):
        self.sigs, self.trained_refs, self.enrol_preds = sigs, trained_refs, enrol_preds
        self.indexes, self.matches = {}, {}

    def index(self, profile: float, k: int, shots: int) -> ReferenceIndex:
        key = (profile, k, shots)
        if key not in self.indexes:
            keys = self.trained_refs[0] + [c for c, ps in self.enrol_preds.items() for _ in ps[:shots]]
            refs = self.trained_refs[1] + [p for ps in self.enrol_preds.values() for p in ps[:shots]]
            self.indexes[key] = ReferenceIndex(keys, self.sigs(refs, profile), k)
        return self.indexes[key]

    def best(self, group: str, preds: list, profile: float, k: int, shots: int) -> list[tuple[str, float]]:
        key = (group, profile, k, shots)
        if key not in self.matches:
            self.matches[key] = self.index(profile, k, shots).best(self.sigs(preds, profile)) if preds else []
        return self.matches[key]

    def leave_one_out(self, profile: float, k: int) -> list[tuple[str, tuple[str, float]]]:
        """Each enrolment photo's best match against every other reference (the trained landmarks' and the
        other enrolment photos): (its landmark, (best key, score)) — calibration that touches no test photo."""
        names = [c for c, ps in self.enrol_preds.items() for _ in ps]
        enrol = [p for ps in self.enrol_preds.values() for p in ps]
        keys = self.trained_refs[0] + names
        index = ReferenceIndex(keys, self.sigs(self.trained_refs[1] + enrol, profile), k)
        sims = self.sigs(enrol, profile) @ index.embeddings.T
        offset = len(self.trained_refs[0])
        sims[np.arange(len(enrol)), offset + np.arange(len(enrol))] = -np.inf  # not itself
        scores = np.full((len(enrol), len(index.keys)), -1.0)
        for j in range(len(index.keys)):
            own = -np.sort(-sims[:, index.owners == j], axis=1)[:, :k]
            finite = np.isfinite(own)
            counts = finite.sum(1)
            total = np.where(finite, own, 0.0).sum(1)
            scores[:, j] = np.where(counts > 0, total / np.maximum(counts, 1), -1.0)
        best = scores.argmax(1)
        return [(name, (index.keys[j], float(scores[i, j])))
                for i, (name, j) in enumerate(zip(names, best, strict=False))]


def decide(preds: list, group: str, rule: FewShotRule, matcher: Matcher | None, shots: int = 0) -> list:
    """``ml.fewshot.combine`` of each prediction with its best reference match (``matcher`` None: the
    classifier alone, as without enrolment)."""
    if matcher is None:
        return [combine(p, (None, -1.0), rule) for p in preds]
    trained = set(matcher.sigs.labels)
    matches = matcher.best(group, preds, rule.profile, rule.k, shots)
    return [combine(p, m, rule, trained) for p, m in zip(preds, matches, strict=False)]


def calibrate(matcher: Matcher, known_val, known_truth, neg_val, shots: int, base_known: float,
              base_neg: float) -> tuple[FewShotRule, list]:
    """The rule that best recognises the enrolment photos (leave-one-out) while the trained landmarks'
    validation accuracy and the calibration negatives' rejection each drop ≤ 1 point."""
    rows = []
    trained = set(matcher.sigs.labels)
    for profile in PROFILES:
        loo = matcher.leave_one_out(profile, FewShotRule().k)
        loo_preds = [p for ps in matcher.enrol_preds.values() for p in ps]
        for threshold in THRESHOLDS:
            for override in OVERRIDES:
                for max_rest in MAX_RESTS:
                    rule = FewShotRule(float(threshold), override, profile=profile, max_rest=max_rest)
                    known = share(d.label == t for d, t in
                                  zip(decide(known_val, "val", rule, matcher, shots), known_truth, strict=False))
                    neg = share(d.label is None for d in decide(neg_val, "neg val", rule, matcher, shots))
                    hits = share(combine(p, m, rule, trained).label == name
                                 for p, (name, m) in zip(loo_preds, loo, strict=False))
                    rows.append((rule, known, neg, hits))
    return best_rule(rows, base_known, base_neg), rows


def best_rule(rows: list, base_known: float, base_neg: float) -> FewShotRule:
    """The best leave-one-out among the rules that lose ≤ 1 point of each calibration measure; ties: the
    better trained landmarks, negatives, then the stricter rule (higher threshold, lower max_rest)."""
    allowed = [r for r in rows if r[1] >= base_known - 0.01 and r[2] >= base_neg - 0.01]
    return max(allowed or rows, key=lambda r: (r[3], r[1], r[2], r[0].threshold, -r[0].max_rest))[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a leave-classes-out bundle: the new landmarks are the "
                                                    "dataset classes it lacks")
    ap.add_argument("--data", required=True, nargs="+", action="extend", help="the dataset folders it was trained on")
    ap.add_argument("--negatives", required=True)
    ap.add_argument("--outliers", help="landmarks that are not ours (ml.data.split_outliers): how many unseen ones "
                                       "stay unknown")
    ap.add_argument("--shots", type=int, default=10, help="enrolment photos per new landmark (target)")
    ap.add_argument("--min-test", type=int, default=3, help="test photos a new landmark keeps at least")
    ap.add_argument("--work", default="runs/fewshot", help="prediction cache")
    ap.add_argument("--doc", default="docs/fewshot.md")
    ap.add_argument("--json", help="also write every number here")
    args = ap.parse_args()

    predictor = Predictor(args.bundle, runtime="litert", fast_path=False)
    seed = predictor.info.extra.get("split", {}).get("seed", 1337)
    dataset = scan(args.data)
    new_classes = [c for c in dataset.classes if c not in predictor.labels]
    if not new_classes:
        raise SystemExit(f"{args.bundle} knows every class of {', '.join(args.data)}: no new landmark to enrol")
    trained = split(subset(dataset, predictor.labels), seed=seed)  # the bundle's own split (ml.train.make_split)
    neg = split_negatives(args.negatives, seed)
    unseen_outliers = split_outliers(args.outliers, seed)["unseen"] if args.outliers else []
    enrol_paths, new_test_paths = enrolment(dataset, new_classes, args.shots, args.min_test, seed)
    short = [c for c in new_classes if not enrol_paths[c] or len(new_test_paths[c]) < args.min_test]
    if short:
        print(f"too few photos (or a duplicate group too large) to enrol and test: {', '.join(short)}; left out")
        new_classes = [c for c in new_classes if c not in short]
    source = {c: source_of(enrol_paths[c][0]) for c in new_classes}
    left_out = [c for c in dataset.classes if c not in predictor.labels]
    ordinal = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 8: "eighth", 10: "tenth"}
    held = next((f"every {word} of the {len(dataset.classes)} sorted classes" for n, word in ordinal.items()
                 if left_out == dataset.classes[::n]), "the dataset classes its labels lack")
    sources = sorted(set(source.values()))

    print(f"bundle {predictor.version} (seed {seed}); {len(new_classes)} new landmarks: {', '.join(new_classes)}")
    cache_dir = Path(args.work)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"predictions-{predictor.version}-mirrored.pkl"  # re-runs skip the model
    cache = pickle.loads(cache_file.read_bytes()) if cache_file.exists() else {}

    def preds(paths: list[str]):
        return embed(predictor, paths, cache)

    name = predictor.labels.__getitem__
    chosen = select_references(np.array([s.label for s in trained.train]), TRAINED_REFERENCES, seed)
    trained_refs = ([name(trained.train[i].label) for i in chosen], preds([trained.train[i].path for i in chosen]))
    known_val, known_val_truth = preds([s.path for s in trained.val]), [name(s.label) for s in trained.val]
    known_test, known_test_truth = preds([s.path for s in trained.test]), [name(s.label) for s in trained.test]
    known_test_source = [source_of(s.path) for s in trained.test]
    neg_val, neg_test = preds(neg["val"]), preds(neg["test"])
    outlier_test = preds(unseen_outliers)
    enrol_preds = {c: preds(enrol_paths[c]) for c in new_classes}
    new_test = [p for c in new_classes for p in preds(new_test_paths[c])]
    new_truth = [c for c in new_classes for _ in new_test_paths[c]]
    cache_file.write_bytes(pickle.dumps(cache))
    sigs = Signatures(predictor.labels)
    matcher = Matcher(sigs, trained_refs, enrol_preds)

    base = FewShotRule()
    base_known_val = share(d.label == t
                           for d, t in zip(decide(known_val, "val", base, None), known_val_truth, strict=False))
    base_neg_val = share(d.label is None for d in decide(neg_val, "neg val", base, None))
    rule, grid = calibrate(matcher, known_val, known_val_truth, neg_val, args.shots, base_known_val, base_neg_val)
    print(f"chosen rule: {rule}")

    def measure(rule: FewShotRule, m: Matcher | None, shots: int = args.shots) -> dict:
        new = decide(new_test, "new test", rule, m, shots)
        known = decide(known_test, "test", rule, m, shots)
        row = {"new landmarks top-1": share(d.label == t for d, t in zip(new, new_truth, strict=False))}
        for src in sources:
            row[f"new {src} top-1"] = share(d.label == t for d, t in zip(new, new_truth, strict=False)
                                            if source[t] == src)
        row["new landmarks: maybe, right landmark"] = share(d.tier == "maybe" and d.label == t
                                                            for d, t in zip(new, new_truth, strict=False))
        row["trained landmarks accepted and correct"] = share(d.label == t
                                                              for d, t in zip(known, known_test_truth, strict=False))
        row["trained landmarks sure and correct"] = share(d.tier == "sure" and d.label == t
                                                          for d, t in zip(known, known_test_truth, strict=False))
        row["test negatives rejected"] = share(d.label is None for d in decide(neg_test, "neg test", rule, m, shots))
        if outlier_test:
            row["unseen foreign landmarks rejected"] = share(d.label is None for d in
                                                             decide(outlier_test, "outliers", rule, m, shots))
        return row

    without = measure(rule, None)
    with_refs = measure(rule, matcher)
    by_shots = {n: measure(rule, matcher, n) for n in sorted({1, 3, 5, args.shots})}
    # the best rule with each weight of the probability profile, and with each max_rest
    by_profile = {w: best_rule([g for g in grid if g[0].profile == w], base_known_val, base_neg_val) for w in PROFILES}
    by_profile = {w: {"rule": vars(b)} | measure(b, matcher) for w, b in by_profile.items()}
    by_max_rest = {x: best_rule([g for g in grid if g[0].max_rest == x], base_known_val, base_neg_val)
                   for x in MAX_RESTS}
    by_max_rest = {x: {"rule": vars(b)} | measure(b, matcher) for x, b in by_max_rest.items()}
    default = measure(FewShotRule(), matcher)  # what a bundle without a "fewshot" entry uses today

    decisions = decide(new_test, "new test", rule, matcher, args.shots)
    per_class = {}
    for c in new_classes:
        mine = [d for d, t in zip(decisions, new_truth, strict=False) if t == c]
        per_class[c] = {"source": source[c], "photos": len(enrol_paths[c]) + len(new_test_paths[c]),
                        "shots": len(enrol_paths[c]), "test": len(mine), "top-1": share(d.label == c for d in mine)}
    per_source = {src: {"landmarks": sum(source[c] == src for c in new_classes),
                        "test photos": sum(v["test"] for v in per_class.values() if v["source"] == src),
                        "top-1": with_refs[f"new {src} top-1"],
                        "mean per landmark": share(v["top-1"] for v in per_class.values() if v["source"] == src)}
                  for src in sources}
    outcomes = outcome_breakdown(decisions, new_truth, set(new_classes),
                                 matcher.index(rule.profile, rule.k, args.shots), sigs(new_test, rule.profile),
                                 PlacesRule.from_bundle(predictor.info.extra))
    trained_by_source = {}
    for label, m in (("without enrolment", None), ("with enrolment", matcher)):
        known = decide(known_test, "test", rule, m, args.shots)
        for src in sorted(set(known_test_source)):
            mine = [(d, t) for d, t, s in zip(known, known_test_truth, known_test_source, strict=False) if s == src]
            trained_by_source.setdefault(src, {"photos": len(mine)})[label] = share(d.label == t for d, t in mine)
    result = {"bundle": predictor.version, "arch": predictor.info.arch, "seed": seed, "data": args.data,
              "trained_landmarks": len(predictor.labels),
              "new_landmarks": new_classes, "held_out": held, "shots": args.shots, "min_test": args.min_test,
              "rule": vars(rule),
              "calibration base": {"trained val accepted and correct": base_known_val,
                                   "val negatives rejected": base_neg_val},
              "test_photos": {"new": len(new_test), "trained": len(known_test), "negatives": len(neg_test),
                              "unseen foreign landmarks": len(outlier_test)},
              "without_enrolment": without, "with_enrolment": with_refs, "by_shots": by_shots,
              "by_profile": by_profile, "by_max_rest": by_max_rest, "default_rule": vars(FewShotRule()),
              "with_enrolment_default_rule": default, "per_source": per_source, "per_new_landmark": per_class,
              "new_landmark_outcomes": outcomes, "trained_by_source": trained_by_source}
    print(json.dumps(result, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    write_doc(Path(args.doc), result, grid, " ".join(sys.argv[1:]))
    return 0


def outcome_breakdown(decisions, truth, new: set, index: ReferenceIndex, signatures: np.ndarray,
                      places_rule: PlacesRule) -> dict:
    """What a visitor sees for a new landmark's photo, and whether "places that look like this" (shown
    for every answer that is not sure, ``ml.places``; without the candidates a maybe answer names) has it."""
    scores = index.scores(signatures)
    rows = defaultdict(int)
    in_places = 0
    for d, t, row in zip(decisions, truth, scores, strict=False):
        if d.tier == "maybe" and d.label == t:
            rows["maybe, the right landmark"] += 1
            continue
        if d.label in new:
            rows["maybe, another new landmark"] += 1
        elif d.tier == "sure":
            rows["sure, a trained landmark"] += 1
        elif d.tier == "maybe":
            rows["maybe, a trained landmark"] += 1
        else:
            rows["unknown"] += 1
        if d.tier != "sure":
            named = tuple(d.suggestions) if d.tier == "maybe" else ()
            in_places += t in [k for k, _ in similar_places(row, index.keys, places_rule, named)]
    n = len(truth)
    out = {k: rows[k] / n for k in ("maybe, the right landmark", "maybe, another new landmark",
                                    "maybe, a trained landmark", "sure, a trained landmark", "unknown")}
    out["wrong or unknown, but the right landmark among the places"] = in_places / n
    out["places floor"] = places_rule.min_similarity
    return out


def write_doc(path: Path, r: dict, grid: list, command: str) -> None:
    import platform
    import subprocess

    cols = [c for c in r["with_enrolment"] if not c.startswith("new landmarks: maybe")]
    pct = lambda v: "–" if v != v else f"{v:.1%}"  # noqa: E731
    rule = r["rule"]
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    vnni = "avx512_vnni" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False
    by_source = r["per_source"]
    met = r["with_enrolment"]["new landmarks top-1"] >= 0.9
    lines = [
        "# Few-shot enrolment: new landmarks without retraining", "",
        f"## Latest run: {len(r['new_landmarks'])} new landmarks on a model of the other {r['trained_landmarks']}", "",
        f"Measured by `python bench/fewshot.py {command}` on {cpu} ({'with' if vnni else 'without'} avx512_vnni; "
        "LiteRT float model). "
        f"A {ARCH_NAMES.get(r['arch'], r['arch'])} trained with the production recipe (split seed {r['seed']}) "
        f"on {r['trained_landmarks']} of the landmarks (bundle `{r['bundle']}`) never saw "
        f"**{', '.join(r['new_landmarks'])}** "
        f"({r['held_out']}). Each was enrolled with min({r['shots']}, photos − {r['min_test']}) "
        "photos (group-aware: no near-duplicate of an enrolment photo is tested) and tested on its other photos: "
        f"{r['test_photos']['new']} in all; {r['test_photos']['trained']} test photos of the trained landmarks, "
        f"{r['test_photos']['negatives']} test negatives"
        + (f" and {r['test_photos']['unseen foreign landmarks']} photos of foreign landmarks the model never saw "
           "in any form (`ml.data.split_outliers`' unseen classes)"
           if r["test_photos"]["unseen foreign landmarks"] else "")
        + " complete the test.", "",
        f"Calibrated rule (`ml/fewshot.py`; chosen on calibration data only): profile weight **{rule['profile']}**, "
        f"k = {rule['k']}, threshold **{rule['threshold']}**, override **{rule['override']}**, max_rest "
        f"**{rule['max_rest']}** (a reference match needs at most that much of the classifier's probability outside "
        "its top 5, mostly the background class; now calibrated too, as the outlier-exposed background class takes "
        "much of an unseen Vietnamese landmark's probability). A reference match is always a *maybe* answer "
        "(`ml/tiers.py`); top-1 counts the decision's label (sure or maybe), \"accepted and correct\" likewise; "
        "rejected = unknown.", "",
        "| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
        "| without enrolment | " + " | ".join(pct(r["without_enrolment"][c]) for c in cols) + " |",
        f"| with ≤ {r['shots']} photos per new landmark, calibrated rule | "
        + " | ".join(pct(r["with_enrolment"][c]) for c in cols) + " |",
        "| the same, `ml/fewshot.py`'s default rule ("
        + ", ".join(f"{k} {v}" for k, v in r["default_rule"].items() if k != "k") + ") | "
        + " | ".join(pct(r["with_enrolment_default_rule"][c]) for c in cols) + " |",
        "",
        f"**Target: new landmarks top-1 ≥ 90 % — {'met' if met else 'not met'}** "
        f"({pct(r['with_enrolment']['new landmarks top-1'])} over the test photos; "
        + "; ".join(f"{src}: {pct(v['top-1'])} over {v['test photos']} photos of {v['landmarks']} landmarks, "
                    f"{pct(v['mean per landmark'])} mean per landmark" for src, v in by_source.items()) + "). "
        f"{pct(r['with_enrolment']['new landmarks: maybe, right landmark'])} of the new-landmark test photos are "
        "answered \"maybe\" with the right landmark (the classifier cannot name a new landmark, so this equals top-1). "
        "What limits it: [below](#what-limits-it).",
        "", "## What a visitor sees for a new landmark's photo", "", "| answer | share |", "|---|---|",
        *[f"| {k} | {pct(v)} |" for k, v in r["new_landmark_outcomes"].items() if k != "places floor"],
        "", f"(\"Places that look like this\": the bundle's floor {r['new_landmark_outcomes']['places floor']}, "
        "3 places.)",
        "", "## Per new landmark", "", "| landmark | source | photos | enrolment photos | test photos | top-1 |",
        "|---|---|---|---|---|---|",
        *[f"| {c} | {v['source']} | {v['photos']} | {v['shots']} | {v['test']} | {pct(v['top-1'])} |"
          for c, v in r["per_new_landmark"].items()],
        "", "## Trained landmarks per source (accepted and correct)", "",
        "| source | test photos | without enrolment | with enrolment |", "|---|---|---|---|",
        *[f"| {s} | {v['photos']} | {pct(v['without enrolment'])} | {pct(v['with enrolment'])} |"
          for s, v in r["trained_by_source"].items()],
        "", "## Photos per new landmark (same rule and test photos; at most the enrolment photos above)", "",
        "| shots | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
        *[f"| {n} | " + " | ".join(pct(m[c]) for c in cols) + " |" for n, m in r["by_shots"].items()],
        "", "## Weight of the probability profile (each with its own calibrated rule)", "",
        "| profile weight | threshold | override | max_rest | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 4) + "|",
        *[f"| {w} | {m['rule']['threshold']} | {m['rule']['override']} | {m['rule']['max_rest']} | "
          + " | ".join(pct(m[c]) for c in cols) + " |" for w, m in r["by_profile"].items()],
        "", "## max_rest (each with its own calibrated rule)", "",
        "| max_rest | profile weight | threshold | override | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 4) + "|",
        *[f"| {x} | {m['rule']['profile']} | {m['rule']['threshold']} | {m['rule']['override']} | "
          + " | ".join(pct(m[c]) for c in cols) + " |" for x, m in r["by_max_rest"].items()],
        "", f"## Calibration grid (validation data, profile weight {rule['profile']}, max_rest {rule['max_rest']})", "",
        "Without enrolment: trained val accepted & correct "
        f"{pct(r['calibration base']['trained val accepted and correct'])}, val negatives rejected "
        f"{pct(r['calibration base']['val negatives rejected'])}; a rule may lose ≤ 1 point of each.", "",
        "| threshold | override | trained val accepted & correct | val negatives rejected | enrolment leave-one-out |",
        "|---|---|---|---|---|",
        *[f"| {g[0].threshold} | {g[0].override} | {pct(g[1])} | {pct(g[2])} | {pct(g[3])} |" for g in grid
          if g[0].override in (0.8, 1.01) and g[0].profile == rule["profile"] and g[0].max_rest == rule["max_rest"]
          and round(g[0].threshold * 40) % 2 == 0],
    ]
    kept = ""
    if path.exists():
        old = path.read_text()
        found = [i for i in (old.find(f"\n{heading}\n") for heading in KEPT) if i >= 0]
        kept = old[min(found) + 1:] if found else ""
    path.write_text("\n".join(lines) + "\n\n" + kept)
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
