"""Retraining (the ``training`` queue): base dataset + every reference photo → a new ModelVersion.

The dataset is assembled as symbolic links in a temporary folder-per-class tree: the configured base
datasets (``TRAINING_DATA_DIR``: one folder, several separated by ``os.pathsep``, or a folder of
datasets) and, for every landmark with reference photos, a folder named by its
class key (or slug, for enrolled landmarks). The ML core trains, calibrates, exports and evaluates; the
row gets live progress after every epoch, then the bundle's version, metrics and classes, or the error.
An admin activates it (workers switch without restart).
"""
from __future__ import annotations

import logging
import os
import tempfile
import traceback
from pathlib import Path

from flask import current_app

from webapp.extensions import db
from webapp.models import Landmark, ModelVersion, ReferencePhoto, utcnow
from webapp.storage import reference_path

log = logging.getLogger(__name__)
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif",
          "HEIF": ".heic", "MPO": ".jpg"}
MIN_PHOTOS_PER_CLASS = 3


def train(version_id: int) -> str:
    row = db.session.get(ModelVersion, version_id)
    if row is None or row.status != "training":
        log.warning("model version %s is not waiting for training; skipped", version_id)
        return "skipped"
    progress = Progress(version_id)
    try:
        with tempfile.TemporaryDirectory(prefix="landmarks-train-") as tmp:
            data_dir, note = assemble_dataset(Path(tmp) / "data")
            progress.update(phase="prepare", message=note)
            info, metrics = train_and_package(row, data_dir, progress)
    except Exception as exc:
        db.session.rollback()
        log.exception("training model version %s failed", version_id)
        finish(version_id, status="failed", error=f"{type(exc).__name__}: {exc}",
               progress=progress.state | {"phase": "failed", "traceback": traceback.format_exc(limit=5)})
        return "failed"
    finish(version_id, status="ready", version=info.version, bundle_dir=str(info.path), classes=info.labels,
           metrics=summary(metrics), progress=progress.state | {"phase": "done"})
    log.info("model version %s trained: bundle %s, top-1 %.3f", version_id, info.version, metrics["top1"])
    return "ready"


def train_and_package(row: ModelVersion, data_dir: Path, progress: Progress):
    from ml.evaluate import evaluate
    from ml.train import TrainConfig, package, run

    config = current_app.config
    models = Path(config["MODEL_DIR"])
    cfg = TrainConfig(data=str(data_dir), arch=row.arch, out=str(models / f"run-{row.id}"),
                      negatives=config["TRAINING_NEGATIVES_DIR"], outliers=config["TRAINING_OUTLIERS_DIR"],
                      weights=config["TRAINING_WEIGHTS"], **config["TRAINING_OPTIONS"])
    result = run(cfg, on_epoch=progress.epoch)
    progress.update(phase="export", message="exporting and calibrating the rejection threshold")
    bundle_dir = models / f"version-{row.id}"
    info = package(result, cfg, bundle_dir, name=f"retrained-{row.id}")
    progress.update(phase="evaluate", message="evaluating on the held-out test split")
    return info, evaluate(bundle_dir, data_dir, negatives=config["TRAINING_NEGATIVES_DIR"],
                          outliers=config["TRAINING_OUTLIERS_DIR"])


def assemble_dataset(root: Path) -> tuple[Path, str]:
    """Link the base dataset and every reference photo into ``root``; returns it and a one-line summary."""
    from ml.data import dataset_roots

    base = current_app.config["TRAINING_DATA_DIR"]
    classes: dict[str, list[Path]] = {}
    for dataset in dataset_roots(base.split(os.pathsep)) if base else []:
        for folder in sorted(p for p in dataset.iterdir() if p.is_dir() and not p.name.startswith(".")):
            classes.setdefault(folder.name, []).extend(sorted(p for p in folder.iterdir() if p.is_file()))
    rows = db.session.execute(db.select(ReferencePhoto, Landmark.class_key, Landmark.slug)
                              .join(Landmark, ReferencePhoto.landmark_id == Landmark.id)).all()
    for photo, class_key, slug in rows:
        classes.setdefault(class_key or slug, []).append(photo)
    kept = {key: items for key, items in classes.items() if len(items) >= MIN_PHOTOS_PER_CLASS}
    if len(kept) < 2:
        raise ValueError(f"need at least 2 landmarks with {MIN_PHOTOS_PER_CLASS}+ photos to train; have {len(kept)}")
    for key, items in kept.items():
        folder = root / key
        folder.mkdir(parents=True)
        for i, item in enumerate(items):
            if isinstance(item, ReferencePhoto):
                (folder / f"reference-{item.id}{SUFFIX.get(item.image_format, '.jpg')}").symlink_to(
                    reference_path(item))
            else:
                (folder / f"{i:05d}-{item.name}").symlink_to(item.resolve())
    skipped = sorted(set(classes) - set(kept))
    note = f"{sum(map(len, kept.values()))} photos of {len(kept)} landmarks ({len(rows)} reference photos)"
    return root, note + (f"; skipped (fewer than {MIN_PHOTOS_PER_CLASS} photos): {', '.join(skipped)}"
                         if skipped else "")


class Progress:
    """Live progress on the ModelVersion row: phase, epoch and the per-epoch history."""

    def __init__(self, version_id: int):
        self.version_id = version_id
        self.state: dict = {"phase": "prepare", "epoch": 0, "epochs": 0, "history": []}

    def epoch(self, phase: str, epoch: int, epochs: int, logs: dict) -> None:
        entry = {"phase": phase, "epoch": epoch} | {k: round(float(v), 5) for k, v in logs.items()
                                                    if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        self.update(phase=phase, epoch=epoch, epochs=epochs, history=self.state["history"] + [entry],
                    message=f"{phase} epoch {epoch}/{epochs}")

    def update(self, **changes) -> None:
        self.state = self.state | changes
        db.session.execute(db.update(ModelVersion).where(ModelVersion.id == self.version_id)
                           .values(progress=self.state))
        db.session.commit()


def finish(version_id: int, **values) -> None:
    db.session.execute(db.update(ModelVersion).where(ModelVersion.id == version_id)
                       .values(finished_at=utcnow(), **values))
    db.session.commit()


def summary(metrics: dict) -> dict:
    rejection = metrics.get("rejection", {})
    return {"top1": metrics["top1"], "top5": metrics.get("top5"), "test_photos": metrics.get("test_photos"),
            "negatives_rejected": rejection.get("negatives_rejected"),
            "accepted_correct": rejection.get("landmarks_accepted_correct"),
            "threshold": rejection.get("threshold")}
