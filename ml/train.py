"""Training: from-scratch nets end to end; transfer nets in two phases (frozen base, then top blocks).

Transfer training on CPU caches the frozen lower part of the backbone: each training photo is
augmented into ``views`` random views once, pushed through the frozen stem once, and both phases
then train on those activations. Batch norm stays in inference mode throughout (the base is always
called with ``training=False``), so this is exactly "freeze the bottom, fine-tune the top blocks"
at a fraction of the cost.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ml import architectures
from ml.bundle import BundleInfo
from ml.data import DataDirs, Sample, Split, scan, split, split_negatives, split_outliers, subset  # noqa: F401
from ml.pipeline import LOAD_MARGIN, augmenter, load_arrays, make_dataset

BACKGROUND = "_background"  # the extra class trained on non-landmark photos
# Non-landmark calibration photos under the rejection threshold: 97 % left 93.5 % of the test ones
# under it with the 50-landmark model (130 calibration photos are few), so the bar is higher.
MIN_REJECTED = 0.985
# Where the frozen stem ends; everything after is fine-tuned in phase 2.
FINE_TUNE_FROM = {  # candidates: the offline Lite0 file names its layers generically, Keras' B0 does not
    "mobilenetv2": ("block_14_add",),
    "efficientnet_lite0": ("add_7", "block6c_add"),  # the end of block 6c
    "efficientnet_lite2": ("block6d_add",),  # the end of block 6d (of 6e): blocks 6e, 7a and the head are tuned
}


@dataclass
class TrainConfig:
    data: DataDirs  # one or several folder-per-class datasets (ml.data.dataset_roots)
    arch: str
    out: str
    negatives: str | None = None
    outliers: str | None = None  # landmarks that are not ours: outlier exposure (ml.data.split_outliers)
    stem_cache: str | None = None  # folder of frozen-stem features shared by runs (default: inside ``out``)
    max_views: int = 16  # a class with few photos gets more augmented views, up to this many
    balance: bool = True  # equal total weight for every landmark class (class weights)
    fine_tune_from: str | None = None  # the layer where the frozen stem ends (default: FINE_TUNE_FROM)
    source_shift: bool = True  # augment for the differences between web sources (ml.pipeline.Augment)
    weights: str | None = None
    epochs: int = 30  # from-scratch epochs; transfer uses head_epochs + fine_tune_epochs
    head_epochs: int = 6
    fine_tune_epochs: int = 16
    views: int = 4
    img_size: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    fine_tune_lr: float = 5e-5  # Adam steps are weight-scale free: keep them small on pretrained convs
    label_smoothing: float = 0.1
    patience: int = 8
    seed: int = 1337
    test_fraction: float = 0.3
    val_fraction: float = 0.1
    max_per_class: int | None = None  # cap for quick runs (compare, tests)
    classes: list[str] | None = None  # train on a subset of the classes (leave-classes-out)


@dataclass
class TrainResult:
    arch: architectures.Architecture
    split: Split
    classes: list[str]  # model outputs, background last when present
    history: dict
    seconds: float
    negatives: dict  # {"train": [...], "val": [...], "test": [...]} paths
    outliers: dict = field(default_factory=dict)  # ml.data.split_outliers: also "unseen"


def run(cfg: TrainConfig, on_epoch: Callable[[str, int, int, dict], None] | None = None) -> TrainResult:
    """Train ``cfg``; ``on_epoch(phase, epoch, epochs, logs)`` is called after every epoch (live progress)."""
    keras.utils.set_random_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data_split = make_split(cfg)
    data_split.save(out / "split.json")
    neg = split_negatives(cfg.negatives, cfg.seed)
    outliers = split_outliers(cfg.outliers, cfg.seed)
    background_train, background_val = neg["train"] + outliers["train"], neg["val"] + outliers["val"]
    classes = data_split.classes + ([BACKGROUND] if background_train else [])
    arch = architectures.build(cfg.arch, len(classes), cfg.img_size, weights=cfg.weights)
    print(f"{cfg.arch}: {len(classes)} outputs, {arch.model.count_params():,} parameters, {arch.img_size}px; "
          f"train {len(data_split.train)} / val {len(data_split.val)} / test {len(data_split.test)} photos, "
          f"{len(neg['train'])} + {len(outliers['train'])} background photos (non-landmarks + other landmarks); "
          f"{len(data_split.skipped)} unreadable files skipped")
    started = time.time()
    bg = len(classes) - 1
    train_samples = data_split.train + [Sample(p, bg) for p in background_train]
    val_samples = data_split.val + [Sample(p, bg) for p in background_val]
    if arch.backbone is not None and cfg.arch in FINE_TUNE_FROM:
        history = _train_transfer(cfg, arch, train_samples, val_samples, out, on_epoch,
                                  bg if background_train else None)
    else:
        history = _train_end_to_end(cfg, arch, train_samples, val_samples, out, on_epoch)
    seconds = time.time() - started
    (out / "history.json").write_text(json.dumps(history))
    (out / "training.json").write_text(json.dumps(
        {"config": vars(cfg), "classes": classes, "preprocess": arch.preprocess, "seconds": seconds, "negatives": neg,
         "outliers": outliers}, indent=1))
    arch.model.save(out / "model.keras")
    return TrainResult(arch, data_split, classes, history, seconds, neg, outliers)


def make_split(cfg: TrainConfig) -> Split:
    dataset = scan(cfg.data)
    if cfg.classes:
        dataset = subset(dataset, cfg.classes)
    if cfg.max_per_class:
        kept: list = []
        seen: dict[int, int] = {}
        for s in dataset.samples:
            seen[s.label] = seen.get(s.label, 0) + 1
            if seen[s.label] <= cfg.max_per_class:
                kept.append(s)
        dataset.samples = kept
    return split(dataset, test_fraction=cfg.test_fraction, val_fraction=cfg.val_fraction, seed=cfg.seed)


def _callbacks(out: Path, phase: str, patience: int, epochs: int, on_epoch=None) -> list:
    progress = [keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: on_epoch(phase, epoch + 1, epochs, dict(logs or {})))] if on_epoch else []
    return progress + [
        keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(out / f"best-{phase}.weights.h5"), monitor="val_loss",
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.TensorBoard(str(out / "logs" / phase)),
        keras.callbacks.BackupAndRestore(str(out / "backup" / phase)),
    ]


def _compile(model: keras.Model, lr, smoothing: float) -> None:
    model.compile(
        optimizer=keras.optimizers.AdamW(lr, weight_decay=1e-4),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(5, name="top5")],
        jit_compile=False,  # XLA on CPU runs (depthwise) convolutions several times slower than oneDNN
    )


def _onehot(samples: list[Sample], n: int) -> np.ndarray:
    return keras.utils.to_categorical([s.label for s in samples], n).astype(np.float32)


def _train_end_to_end(cfg, arch, train: list[Sample], val: list[Sample], out: Path, on_epoch=None) -> dict:
    n = arch.model.output_shape[-1]
    size = arch.img_size
    x_train = load_arrays(train, int(size * LOAD_MARGIN), desc="train photos")
    x_val = load_arrays(val, size, desc="val photos")
    kw = dict(img_size=size, batch_size=cfg.batch_size, mean=arch.mean, std=arch.std, seed=cfg.seed)
    ds_train = make_dataset(x_train, _onehot(train, n), augment=True, shuffle=True, **kw)
    ds_val = make_dataset(x_val, _onehot(val, n), augment=False, shuffle=False, **kw)
    steps = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
    _compile(arch.model, keras.optimizers.schedules.CosineDecay(cfg.lr, steps, warmup_target=None), cfg.label_smoothing)
    hist = arch.model.fit(ds_train, validation_data=ds_val, epochs=cfg.epochs, verbose=2,
                          callbacks=_callbacks(out, "scratch", cfg.patience, cfg.epochs, on_epoch))
    return {"scratch": hist.history}


def _train_transfer(cfg, arch, train: list[Sample], val: list[Sample], out: Path, on_epoch=None,
                    background: int | None = None) -> dict:
    base, model = arch.backbone, arch.model
    n = model.output_shape[-1]
    names = {layer.name for layer in base.layers}
    cut_name = cfg.fine_tune_from or next(n for n in FINE_TUNE_FROM[cfg.arch] if n in names)
    cut = base.get_layer(cut_name).output
    stem = keras.Model(base.input, cut, name="stem")
    top = keras.Model(cut, base.output, name="top")
    size = arch.img_size

    views = views_per_sample(train, cfg.views, cfg.max_views, background)
    key = (f"{cfg.arch}-{size}" + (f"-{cut_name}" if cfg.fine_tune_from else "")
           + ("" if cfg.source_shift else "-nosource"))
    cache = StemCache(cfg.stem_cache or out / "stem-cache", key, source_shift=cfg.source_shift)
    feats_train, rows = cache.views(stem, arch, train, views)
    y_train = _onehot([train[i] for i in rows], n)
    weights = class_weights(y_train, background) if cfg.balance else None
    feats_val = cache.views(stem, arch, val, [1] * len(val))[0]  # view 0: the whole photo
    y_val = _onehot(val, n)

    inputs = keras.Input(cut.shape[1:], name="stem_features")
    x = top(inputs, training=False)
    for name in ("embedding", "head_dropout", "probs"):
        x = model.get_layer(name)(x)
    trainer = keras.Model(inputs, x, name="top_and_head")
    fit = dict(x=feats_train, y=y_train, sample_weight=weights, validation_data=(feats_val, y_val),
               batch_size=cfg.batch_size, shuffle=True, verbose=2)

    top.trainable = False
    _compile(trainer, cfg.lr, cfg.label_smoothing)
    h1 = trainer.fit(epochs=cfg.head_epochs,
                     callbacks=_callbacks(out, "head", cfg.patience, cfg.head_epochs, on_epoch), **fit)

    top.trainable = True  # batch norm stays in inference mode: `top` is called with training=False
    for layer in top.layers:  # ...but Keras 3 lets fit()'s training=True override that, so freeze BN itself
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    steps = math.ceil(len(feats_train) / cfg.batch_size) * cfg.fine_tune_epochs
    _compile(trainer, keras.optimizers.schedules.CosineDecay(cfg.fine_tune_lr, steps), cfg.label_smoothing)
    h2 = trainer.fit(epochs=cfg.fine_tune_epochs,
                     callbacks=_callbacks(out, "fine_tune", cfg.patience, cfg.fine_tune_epochs, on_epoch),
                     **fit)
    return {"head": h1.history, "fine_tune": h2.history}


def views_per_sample(samples: list[Sample], views: int, max_views: int, background: int | None = None) -> list[int]:
    """Augmented views per photo: ``views``, more for the photos of small classes (balanced sampling: a
    class with a quarter of the largest class's photos gets four times the views), at most ``max_views``."""
    counts = np.bincount([s.label for s in samples])
    landmark = [c for c in counts[: background] if c] if background is not None else [c for c in counts if c]
    largest = max(landmark, default=1)
    return [views if s.label == background
            else int(min(max_views, max(views, round(views * largest / counts[s.label]))))
            for s in samples]


def class_weights(y: np.ndarray, background: int | None = None) -> np.ndarray:
    """Per-row weights that give every landmark class the same total weight (background rows keep 1)."""
    labels = y.argmax(1)
    counts = np.bincount(labels, minlength=y.shape[1]).astype(np.float64)
    landmark = np.arange(y.shape[1]) != background
    target = counts[landmark & (counts > 0)].mean()
    per_class = np.where(landmark & (counts > 0), target / np.maximum(counts, 1), 1.0)
    return per_class[labels].astype(np.float32)


class StemCache:
    """Frozen-stem features of augmented views, one file per photo, shared by every run with the same
    backbone and input size (leave-classes-out studies and repeated splits train many models on the same
    photos; the views are random either way).
    View 0 is the whole photo; views 1.. are random augmentations (``ml.pipeline.Augment``)."""

    def __init__(self, folder, key: str, source_shift: bool = True):
        self.folder = Path(folder) / key
        self.source_shift = source_shift
        self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, path: str) -> Path:
        import hashlib

        return self.folder / (hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest() + ".npy")

    def views(self, stem, arch, samples: list[Sample], counts: list[int]) -> tuple[np.ndarray, list[int]]:
        """Features of the first ``counts[i]`` views of each sample → (rows, sample index of each row)."""
        have = {}
        for i, s in enumerate(samples):
            f = self._file(s.path)
            if f.exists():
                have[i] = np.load(f)
        missing = [i for i in range(len(samples)) if i not in have or len(have[i]) < counts[i]]
        if missing:
            self._compute(stem, arch, samples, counts, missing, have)
        feats, rows = [], []
        for i, c in enumerate(counts):
            feats.append(have[i][:c])
            rows += [i] * c
        return np.concatenate(feats).astype(np.float32), rows

    def _compute(self, stem, arch, samples, counts, missing: list[int], have: dict) -> None:
        from tqdm import tqdm

        size = arch.img_size
        images = load_arrays([samples[i] for i in missing], int(size * LOAD_MARGIN), desc="photos for the stem cache")
        aug = augmenter(size, len(have), self.source_shift)
        batch = 64
        done = {i: list(have.get(i, [])) for i in missing}
        bar = tqdm(total=sum(counts[i] - len(done[i]) for i in missing), desc="caching augmented views", unit="img")
        for view in range(max(counts[i] for i in missing)):
            todo = [j for j, i in enumerate(missing) if len(done[i]) == view and counts[i] > view]
            for k in range(0, len(todo), batch):
                part = todo[k: k + batch]
                x = tf.cast(images[part], tf.float32)
                x = aug(x) if view else tf.image.resize(x, (size, size))  # view 0: the whole photo
                x = (tf.clip_by_value(x, 0.0, 255.0) - arch.mean) / arch.std
                for j, f in zip(part, stem(x, training=False).numpy().astype(np.float16), strict=False):
                    done[missing[j]].append(f)
                bar.update(len(part))
        bar.close()
        for i in missing:
            have[i] = np.stack(done[i])
            np.save(self._file(samples[i].path), have[i])


def package(result: TrainResult, cfg: TrainConfig, bundle_dir: str | Path, *, name: str | None = None,
            fast_path: bool = True, min_rejected: float = MIN_REJECTED) -> BundleInfo:
    """Export the trained model as a bundle and calibrate its rejection threshold on held-out photos.

    The threshold is the lowest that rejects ``min_rejected`` of the calibration negatives (and, with
    no negatives, keeps the classifier's plain argmax); the answer tiers and the places floor are
    calibrated with it (``calibrate_answers``). ``fast_path``: add the int8 fast path
    (``ml.fastpath``), calibrated on the training photos and training negatives.
    """
    import shutil

    from ml import bundle as bundles
    from ml.predictor import Predictor

    arch, data_split = result.arch, result.split
    background = result.classes[-1] == BACKGROUND
    info = bundles.export(
        arch.model, bundle_dir, labels=data_split.classes, arch=cfg.arch, preprocess=arch.preprocess,
        background=background, name=name,
        extra={"split": {"seed": cfg.seed, "test_fraction": cfg.test_fraction, "val_fraction": cfg.val_fraction},
               "trained_on": {"images": len(data_split.train), "background_images": len(result.negatives["train"]),
                              "seconds": round(result.seconds)}},
    )
    shutil.copy(Path(cfg.out) / "history.json", Path(bundle_dir) / "history.json")
    predictor = Predictor(bundle_dir, runtime="litert")
    write_references(predictor, data_split.train, bundle_dir, cfg.seed)
    if result.negatives["val"]:
        info = calibrate_answers(predictor, data_split.val, result.negatives["val"], result.outliers.get("val", []),
                                 bundle_dir, min_rejected)
    if fast_path:  # after the threshold: the fast path's floor derives from it
        from ml import quantize

        images = quantize.calibration_images(data_split.train, result.negatives["train"], arch.img_size)
        info = quantize.add(bundle_dir, images)
    return info


def calibrate_answers(predictor, val: list[Sample], negatives: list[str], outliers: list[str], bundle_dir,
                      min_rejected: float = MIN_REJECTED) -> BundleInfo:
    """Store the calibrated answer rules in the bundle, all chosen on held-out calibration photos: the
    rejection threshold (``min_rejected`` of the non-landmark photos below it: "not a landmark we
    know"), the sure/maybe rule (``ml.tiers.calibrate``: sure answers ≥ 98 % right on the validation
    landmarks *and* on the outlier landmarks and non-landmarks, which must never be sure), and the
    floor of "places that look like this" (``ml.places.calibrate_floor``)."""
    from ml import bundle as bundles
    from ml.evaluate import choose_threshold, rejection_curve
    from ml.places import calibrate_floor, landmark_outputs
    from ml.tiers import calibrate

    known, _, _ = landmark_outputs(predictor, [s.path for s in val])
    labels = np.array([s.label for s in val])
    neg, _, neg_best = landmark_outputs(predictor, negatives)
    other, _, _ = landmark_outputs(predictor, outliers)
    threshold = choose_threshold(rejection_curve(known, labels, neg), min_rejected)
    tiers = calibrate(known, labels, np.concatenate([neg, other]), threshold)
    return bundles.update(
        bundle_dir,
        rejection={"method": "max_prob", "threshold": threshold,
                   "calibration": {"min_rejected": min_rejected, "landmarks": len(labels),
                                   "negatives": len(negatives)}},
        tiers=tiers.to_json() | {"calibration": tiers.calibration | {"outliers": len(outliers)}},
        places={"min_similarity": calibrate_floor(neg_best).min_similarity})


def write_references(predictor, train: list[Sample], bundle_dir, seed: int, per_class: int = 20) -> None:
    """A few training-photo signatures per landmark, so few-shot matching weighs every landmark alike."""
    from ml.fewshot import FewShotRule, predict_with_mirrors, save_references, select_references, signature

    profile = FewShotRule.from_bundle(predictor.info.extra).profile
    chosen = [train[i] for i in select_references(np.array([s.label for s in train]), per_class, seed)]
    predictions = predict_with_mirrors(predictor, [s.path for s in chosen])
    save_references(bundle_dir, [predictor.labels[s.label] for s in chosen],
                    np.stack([signature(p, predictor.labels, profile) for p in predictions]))


def load_finished(cfg: TrainConfig) -> TrainResult:
    """A finished run from its work directory (for packaging again without retraining)."""
    out = Path(cfg.out)
    meta = json.loads((out / "training.json").read_text())
    model = keras.models.load_model(out / "model.keras", compile=False)
    p = meta["preprocess"]
    arch = architectures.Architecture(cfg.arch, model, int(p["size"]), float(p["mean"]), float(p["std"]))
    history = json.loads((out / "history.json").read_text())
    return TrainResult(arch, Split.load(out / "split.json"), meta["classes"], history, meta["seconds"],
                       meta["negatives"],
                       meta.get("outliers", {}))
