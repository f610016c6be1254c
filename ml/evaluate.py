"""Evaluation of a bundle: accuracy, per-class scores, calibration, rejection trade-off, plots, report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml.data import Sample, scan, source_of, split, split_negatives, split_outliers, subset
from ml.predictor import Predictor

THRESHOLDS = np.round(np.linspace(0.0, 1.0, 201), 3)


def scores(predictor: Predictor, samples: list[Sample] | list[str], desc: str = "") -> np.ndarray:
    """Landmark-class probabilities (background column dropped) for files, batched."""
    from tqdm import tqdm

    paths = [s.path if isinstance(s, Sample) else s for s in samples]
    out = []
    for i in tqdm(range(0, len(paths), 64), desc=desc or "predicting", unit="batch", disable=not desc, leave=False):
        probs, _ = predictor.predict_arrays(predictor.preprocess(paths[i: i + 64]))
        out.append(probs[:, : len(predictor.labels)])
    return np.concatenate(out) if out else np.zeros((0, len(predictor.labels)))


def rejection_curve(known: np.ndarray, labels: np.ndarray, unknown: np.ndarray) -> list[dict]:
    """For each threshold: share of known photos accepted *and* correct, share of unknown rejected."""
    top, pred = known.max(1), known.argmax(1)
    correct = pred == labels
    unknown_top = unknown.max(1) if len(unknown) else np.zeros(0)
    return [
        {
            "threshold": float(t),
            "accepted_correct": float(np.mean(correct & (top >= t))) if len(top) else 0.0,
            "accepted": float(np.mean(top >= t)) if len(top) else 0.0,
            "rejected_unknown": float(np.mean(unknown_top < t)) if len(unknown_top) else 1.0,
        }
        for t in THRESHOLDS
    ]


def choose_threshold(curve: list[dict], min_rejected: float = 0.97) -> float:
    """Lowest threshold that rejects ``min_rejected`` of the unknown calibration photos."""
    for point in curve:
        if point["rejected_unknown"] >= min_rejected:
            return point["threshold"]
    return curve[-1]["threshold"]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(np.mean(pred[mask] == labels[mask]) - conf[mask].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    pred = probs.argmax(1)
    k = min(5, probs.shape[1])
    top5 = np.argsort(-probs, 1)[:, :k]
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (labels, pred), 1)
    per_class = {}
    for i, name in enumerate(classes):
        tp = confusion[i, i]
        precision = tp / max(confusion[:, i].sum(), 1)
        recall = tp / max(confusion[i].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(confusion[i].sum())}
    return {
        "top1": float(np.mean(pred == labels)),
        "top5": float(np.mean([lab in row for lab, row in zip(labels, top5, strict=False)])),
        "ece": expected_calibration_error(probs, labels),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def by_source(probs: np.ndarray, labels: np.ndarray, samples: list[Sample]) -> dict:
    """Top-1 / top-5 per dataset folder (web source) of the test photos."""
    sources = np.array([source_of(s.path) for s in samples])
    out = {}
    for source in sorted(set(sources)):
        mask = sources == source
        m = classification_metrics(probs[mask], labels[mask], [str(i) for i in range(probs.shape[1])])
        out[source] = {"photos": int(mask.sum()), "top1": m["top1"], "top5": m["top5"]}
    return out


def tier_shares(predictor: Predictor, probs: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """How photos end (``ml.tiers``): shares sure (and correct, when ``labels``), maybe, unknown."""
    from ml.tiers import tiers_of

    if not len(probs):
        return {}
    tiers = tiers_of(probs, predictor.tiers)
    shares = {"sure": float(np.mean(tiers == 0)), "maybe": float(np.mean(tiers == 1)),
              "unknown": float(np.mean(tiers == 2))}
    if labels is not None:
        shares["sure_correct"] = float(np.mean((tiers == 0) & (probs.argmax(1) == labels)))
    return shares


def evaluate(bundle_dir: str | Path, data_dir, *, negatives: str | None = None, outliers: str | None = None,
             runtime: str = "litert", out: str | Path | None = None) -> dict:
    """Evaluate on the bundle's own test split of ``data_dir`` (one or several dataset folders;
    re-derived from its split settings), per source too; with ``negatives`` / ``outliers`` also how
    non-landmark photos and landmarks that are not ours end (tiers)."""
    predictor = Predictor(bundle_dir, runtime=runtime)
    settings = predictor.info.extra.get("split", {})
    dataset = subset(scan(data_dir), predictor.labels, allow_missing=True)
    test = split(dataset, **{k: settings[k] for k in ("test_fraction", "val_fraction", "seed") if k in settings}).test
    probs = scores(predictor, test, desc="test photos")
    labels = np.array([s.label for s in test])
    metrics = {"bundle": predictor.version, "runtime": runtime, "test_photos": len(test),
               **classification_metrics(probs, labels, predictor.labels),
               "by_source": by_source(probs, labels, test),
               "tiers": {"test landmarks": tier_shares(predictor, probs, labels)}}
    seed = settings.get("seed", 1337)
    threshold = float(predictor.info.rejection.get("threshold", 0.0))
    if negatives:
        neg_test = split_negatives(negatives, seed)["test"]
        neg_probs = scores(predictor, neg_test, desc="negative photos")
        metrics["tiers"]["test negatives"] = tier_shares(predictor, neg_probs)
        curve = rejection_curve(probs, labels, neg_probs)
        at = min(curve, key=lambda p: abs(p["threshold"] - threshold))
        metrics["rejection"] = {
            "threshold": threshold,
            "negatives": len(neg_test),
            "negatives_rejected": at["rejected_unknown"],
            "landmarks_accepted_correct": at["accepted_correct"],
            "landmarks_accepted": at["accepted"],
            "curve": curve,
        }
    if outliers:
        parts = split_outliers(outliers, seed)
        for part in ("test", "unseen"):
            metrics["tiers"][f"{part} outliers"] = tier_shares(
                predictor, scores(predictor, parts[part], desc=f"{part} outliers"))
    out = Path(out or bundle_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(
        _without_curve(metrics) | {"rejection_curve": metrics.get("rejection", {}).get("curve", [])}, indent=1))
    write_plots(out, metrics, predictor.labels, Path(bundle_dir) / "history.json")
    (out / "report.md").write_text(report(metrics))
    return metrics


def _without_curve(metrics: dict) -> dict:
    m = dict(metrics)
    if "rejection" in m:
        m["rejection"] = {k: v for k, v in m["rejection"].items() if k != "curve"}
    return m


def report(m: dict) -> str:
    lines = [f"# Evaluation of `{m['bundle']}` ({m['runtime']})", "",
             f"- test photos: {m['test_photos']}",
             f"- top-1: **{m['top1']:.2%}**, top-5: **{m['top5']:.2%}**",
             f"- expected calibration error: {m['ece']:.3f}"]
    if "rejection" in m:
        r = m["rejection"]
        lines += [f"- rejection threshold {r['threshold']:.3f}: {r['negatives_rejected']:.1%} of {r['negatives']} "
                  f"non-landmark photos rejected; {r['landmarks_accepted_correct']:.1%} of test landmarks accepted "
                  f"and correct ({r['landmarks_accepted']:.1%} accepted)"]
    lines += [f"- {source}: top-1 {v['top1']:.2%}, top-5 {v['top5']:.2%} ({v['photos']} test photos)"
              for source, v in m.get("by_source", {}).items()]
    for group, t in m.get("tiers", {}).items():
        if t:
            correct = f" (sure and correct {t['sure_correct']:.1%})" if "sure_correct" in t else ""
            lines.append(f"- {group}: sure {t['sure']:.1%}{correct}, maybe {t['maybe']:.1%}, "
                         f"not known {t['unknown']:.1%}")
    lines += ["", "| class | precision | recall | F1 | photos |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
              for c, v in m["per_class"].items()]
    lines += ["", "![confusion](confusion.png) ![rejection](rejection.png) ![training](training.png)", ""]
    return "\n".join(lines)


def write_plots(out: Path, m: dict, classes: list[str], history_file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 8))
    ax.imshow(np.array(m["confusion"]), cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"top-1 {m['top1']:.2%}")
    save(fig, out / "confusion.png")

    if "rejection" in m:
        curve = m["rejection"]["curve"]
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.plot([p["rejected_unknown"] for p in curve], [p["accepted_correct"] for p in curve])
        ax.scatter([m["rejection"]["negatives_rejected"]], [m["rejection"]["landmarks_accepted_correct"]], c="red",
                   label=f"threshold {m['rejection']['threshold']:.2f}")
        ax.set_xlabel("non-landmarks rejected")
        ax.set_ylabel("landmarks accepted and correct")
        ax.set_xlim(0.5, 1.0)
        ax.set_ylim(0.5, 1.0)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, out / "rejection.png")

    if history_file.exists():
        history = json.loads(history_file.read_text())
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        offset = 0
        for phase, h in history.items():
            epochs = np.arange(offset + 1, offset + 1 + len(h.get("loss", [])))
            for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
                ax.plot(epochs, h.get(key, []), label=f"{phase} train")
                ax.plot(epochs, h.get(f"val_{key}", []), "--", label=f"{phase} val")
                ax.set_title(key)
                ax.set_xlabel("epoch")
            offset += len(h.get("loss", []))
        axes[0].legend(fontsize=7)
        save(fig, out / "training.png")


def save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
