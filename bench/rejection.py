"""Which rule should decide "sure", "maybe" and "not a landmark we know"? Measured with landmarks left out.

    python bench/rejection.py --data ../shared/data/landmarks-vn20 ../shared/data/landmarks-vn30 \
        --negatives ../shared/data/negatives --outliers ../shared/data/landmarks-elsewhere \
        --bundle ml/shipped/landmarks-vn50 --leave-out runs/lo10 runs/lo30

Every bundle is judged on photos it never saw: its own test split (known landmarks), the test
non-landmark photos, the test photos of the outlier landmarks it was exposed to (other photos of
them trained its background class), the outlier landmark classes it never saw in any form
(``ml.data.split_outliers``: every third Indian monument) and, for a leave-classes-out model, every
photo of the Vietnamese landmarks it was trained without — the hardest unknowns: landmarks that look
like ours. Each rule is calibrated on the bundle's *calibration* photos only (validation split,
calibration negatives and outlier photos: ``ml.tiers.calibrate``, sure answers ≥ 98 % right there),
then measured on the rest. Rules:

  one threshold     today's rule: sure above the rejection threshold, unknown below (no maybe)
  prob              sure above a calibrated top-probability threshold, maybe down to the rejection threshold
  prob+margin       ... and the best landmark that far ahead of the second
  prob+margin+knn   ... and the photo that similar to the trained photos of its best landmark (few-shot index)
  knn               sure on the similarity to the nearest landmark's trained photos alone (the best landmark's)

A leave-out model is trained with the shipped recipe when its folder has no bundle yet
(``--train``: ``runs/lo10`` leaves out every fifth class, ``runs/lo30`` the 30 landmarks of the
second source). Results go to docs/rejection.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.data import scan, split, split_negatives, split_outliers, subset  # noqa: E402
from ml.places import calibrate_floor, landmark_outputs  # noqa: E402
from ml.predictor import Predictor  # noqa: E402
from ml.tiers import TierRule, calibrate, tiers_of  # noqa: E402


@dataclass
class Outputs:
    probs: np.ndarray  # landmark columns only
    similarity: np.ndarray  # few-shot similarity to the best landmark's trained photos
    places: np.ndarray  # best similarity to any landmark's trained photos


def groups(predictor: Predictor, data: list[str], negatives: str, outliers: str) -> dict:
    """The photos each measurement uses, by role."""
    seed = predictor.info.extra.get("split", {}).get("seed", 1337)
    dataset = scan(data)
    parts = split(subset(dataset, predictor.labels), seed=seed)
    neg, out = split_negatives(negatives, seed), split_outliers(outliers, seed)
    unseen = sorted({dataset.classes[s.label] for s in dataset.samples} - set(predictor.labels))
    g = {
        "calibration landmarks": parts.val, "test landmarks": parts.test,
        "calibration negatives": neg["val"], "test negatives": neg["test"],
        "calibration outliers": out["val"], "test outliers": out["test"], "unseen outliers": out["unseen"],
        # the left-out classes, alternately: half calibrate the unknown-aware rules, half measure every rule
        "calibration unseen landmarks": [s for s in dataset.samples if dataset.classes[s.label] in unseen[::2]],
        "unseen landmarks": [s for s in dataset.samples if dataset.classes[s.label] in unseen[1::2]],
    }
    return {name: [getattr(s, "path", s) for s in files] for name, files in g.items()} | {
        "_labels": {name: np.array([s.label for s in g[name]]) for name in ("calibration landmarks", "test landmarks")}}


def study(bundle: str, data: list[str], negatives: str, outliers: str,
          transfer: dict | None = None) -> tuple[dict, dict]:
    """Every rule calibrated on this bundle's calibration photos and measured on its test photos; with
    ``transfer``, also rules calibrated on another bundle (a leave-out model's unknown-aware rules)."""
    predictor = Predictor(bundle, runtime="litert", fast_path=False)
    g = groups(predictor, data, negatives, outliers)
    labels = g.pop("_labels")
    out = {name: Outputs(*landmark_outputs(predictor, paths)) for name, paths in g.items()}
    maybe = float(predictor.info.rejection.get("threshold", 0.0))
    cal_known, cal_labels = out["calibration landmarks"], labels["calibration landmarks"]
    cal_others = [out["calibration outliers"], out["calibration negatives"]]
    o_probs = np.concatenate([o.probs for o in cal_others])
    o_sims = np.concatenate([o.similarity for o in cal_others])
    rules = {
        "one threshold": TierRule(sure=maybe, maybe=maybe),
        "prob": calibrate(cal_known.probs, cal_labels, o_probs, maybe, use_margin=False),
        "prob+margin": calibrate(cal_known.probs, cal_labels, o_probs, maybe),
        "prob+margin+knn": calibrate(cal_known.probs, cal_labels, o_probs, maybe,
                                     known_similarity=cal_known.similarity, other_similarity=o_sims),
        "knn": _knn_only(cal_known, cal_labels, cal_others, maybe),
    }
    unknown = out["calibration unseen landmarks"]
    if len(unknown.probs):
        rules["prob+margin, unknown-aware"] = calibrate(cal_known.probs, cal_labels, o_probs, maybe,
                                                        unknown=unknown.probs)
        rules["prob+margin+knn, unknown-aware"] = calibrate(
            cal_known.probs, cal_labels, o_probs, maybe, known_similarity=cal_known.similarity, other_similarity=o_sims,
            unknown=unknown.probs, unknown_similarity=unknown.similarity)
    for name, rule in (transfer or {}).items():
        rules[f"{name} (from the leave-out model)"] = TierRule(**(rule.to_json() | {"maybe": maybe}))
    results = {name: measure(rule, out, labels["test landmarks"]) for name, rule in rules.items()}
    places = places_floor(out)
    return {"bundle": predictor.version, "labels": predictor.labels, "rules": rules, "results": results,
            "places": places, "counts": {name: len(paths) for name, paths in g.items()}}, out


def _knn_only(known: Outputs, labels, others: list[Outputs], maybe: float) -> TierRule:
    """Sure on similarity alone: the probability bar at the rejection threshold, the similarity calibrated."""
    rule = calibrate(known.probs, labels, np.concatenate([o.probs for o in others]), maybe, use_margin=False,
                     known_similarity=known.similarity,
                     other_similarity=np.concatenate([o.similarity for o in others]), probs_grid=[maybe])
    return rule


def measure(rule: TierRule, out: dict, test_labels: np.ndarray) -> dict:
    def tier(name):
        o = out[name]
        return tiers_of(o.probs, rule, o.similarity) if len(o.probs) else np.zeros(0, int)

    known = tier("test landmarks")
    correct = out["test landmarks"].probs.argmax(1) == test_labels
    row = {
        "sure and correct": float(np.mean((known == 0) & correct)),
        "sure but wrong": float(np.mean((known == 0) & ~correct)),
        "maybe": float(np.mean(known == 1)),
        "negatives not known": float(np.mean(tier("test negatives") == 2)),
        "seen outliers sure": float(np.mean(tier("test outliers") == 0)),
        "unseen outliers sure": float(np.mean(tier("unseen outliers") == 0)),
    }
    unseen = tier("unseen landmarks")
    if len(unseen):
        row["unseen landmarks sure"] = float(np.mean(unseen == 0))
        row["unseen landmarks not known"] = float(np.mean(unseen == 2))
    others_sure = sum(int((tier(n) == 0).sum())
                      for n in ("test negatives", "test outliers", "unseen outliers", "unseen landmarks"))
    sure = int((known == 0).sum()) + others_sure
    row["sure precision"] = float(((known == 0) & correct).sum() / sure) if sure else 1.0
    return row


def places_floor(out: dict) -> dict:
    """The calibrated floor under which a photo gets no "places that look like this" (``ml.places``)."""
    floor = calibrate_floor(out["calibration negatives"].places).min_similarity
    share = lambda name: float(np.mean(out[name].places >= floor)) if len(out[name].places) else float("nan")  # noqa: E731
    return {"min_similarity": floor, "test negatives with places": share("test negatives"),
            "unseen outliers with places": share("unseen outliers"),
            "unseen landmarks with places": share("unseen landmarks")}


def table(results: dict, rules: dict) -> list[str]:
    cols = list(next(iter(results.values())))
    head = "| rule | sure ≥ | margin ≥ | similarity ≥ | " + " | ".join(cols) + " |"
    lines = [head, "|---" * (len(cols) + 4) + "|"]
    for name, row in results.items():
        r = rules[name]
        sim = f"{r.min_similarity:.3f}" if r.min_similarity > -1 else "–"
        lines.append(f"| {name} | {r.sure:.2f} | {r.margin:.2f} | {sim} | "
                     + " | ".join(f"{row[c]:.1%}" for c in cols) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None, help="the shipped bundle (default: the shipped model)")
    ap.add_argument("--data", required=True, nargs="+", action="extend")
    ap.add_argument("--negatives", required=True)
    ap.add_argument("--outliers", required=True)
    ap.add_argument("--leave-out", nargs="*", default=[], help="work folders of leave-classes-out models")
    ap.add_argument("--doc", default="docs/rejection.md")
    ap.add_argument("--json", default=None, help="also write every number here")
    args = ap.parse_args()

    report, everything, transfer = [], {}, {}
    for name, bundle in [(Path(w).name, str(Path(w) / "bundle")) for w in args.leave_out] + [("shipped", args.bundle)]:
        found, _ = study(bundle, args.data, args.negatives, args.outliers, transfer if name == "shipped" else None)
        if not transfer:  # the first leave-out model's unknown-aware rules are tried on the shipped model too
            transfer = {n: r for n, r in found["rules"].items() if n.endswith("unknown-aware")}
        everything[name] = {k: v for k, v in found.items() if k != "rules"} | {
            "rules": {n: r.to_json() for n, r in found["rules"].items()}}
        left_out = sorted(set(scan(args.data, check_images=False).classes) - set(found["labels"]))
        report += [f"## `{found['bundle']}` ({name})", "",
                   f"Trained without: {', '.join(left_out)}." if left_out else "Trained on every landmark.", "",
                   "Photos: " + ", ".join(f"{k} {v}" for k, v in found["counts"].items() if v) + ".", "",
                   *table(found["results"], found["rules"]), "",
                   "Places that look like this: floor {min_similarity:.3f}; with suggestions: test negatives "
                   "{test negatives with places:.1%}, unseen outliers {unseen outliers with places:.1%}, unseen "
                   "landmarks {unseen landmarks with places:.1%}.".format(**found["places"]), ""]
        print("\n".join(report[-8:]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1, default=float))
    doc = Path(args.doc)
    head = doc.read_text().split("<!-- bench/rejection.py -->")[0] if doc.exists() else "# Honest answers\n\n"
    doc.write_text(head + "<!-- bench/rejection.py -->\n\n" + "\n".join(report))
    print(f"written to {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
