"""Model versions: start a retraining, activate a version (or the built-in model), list them.

The one home of these rules for the editor pages, the JSON API and the CLI. The web only writes
``ModelVersion`` rows and sends tasks by name: the training worker fills a row in as it trains,
and inference workers check which row is active themselves. When no row is active they serve the
built-in bundle (``MODEL_BUNDLE``, by default the shipped one), listed here as the pseudo-version
``"shipped"``. Bundle files are read with ``json`` only: the web never imports TensorFlow.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from flask import current_app

from config import EMBED_TASK, TRAIN_TASK
from ml.bundle import SHIPPED
from webapp.errors import ServiceError
from webapp.extensions import db
from webapp.models import ModelVersion, ReferencePhoto, User, utcnow
from webapp.serializers import _iso as iso

SHIPPED_KEY = "shipped"
PLOTS = ("confusion.png", "rejection.png", "training.png")  # written by ml.evaluate.write_plots
MAX_REPORT_BYTES = 256 * 1024


class ModelVersionError(ServiceError):
    """Retraining or an activation refused."""


# --- starting a retraining ---------------------------------------------------------------------

def running_training(before_id: int | None = None) -> ModelVersion | None:
    """The oldest version still training and young enough to be alive (TRAINING_TIMEOUT_S);
    with ``before_id``, only one created before that row."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["TRAINING_TIMEOUT_S"])
    query = db.select(ModelVersion).where(ModelVersion.status == "training", ModelVersion.created_at > cutoff)
    if before_id is not None:
        query = query.where(ModelVersion.id < before_id)
    return db.session.scalars(query.order_by(ModelVersion.id)).first()


def start_training(user: User | None) -> ModelVersion:
    """Create a ``training`` row and send the training task; ModelVersionError 409/400 when refused."""
    config = current_app.config
    busy = running_training()
    if busy is not None:
        raise ModelVersionError(409, f"version {busy.id} is still training; wait for it to finish or fail")
    if not config["TRAINING_DATA_DIR"] and not db.session.scalar(db.select(ReferencePhoto.id).limit(1)):
        raise ModelVersionError(400, "nothing to train on: TRAINING_DATA_DIR is not set and there are no "
                                     "reference photos")
    arch = config["TRAINING_ARCH"]
    version = ModelVersion(arch=arch, status="training", settings=dict(config["TRAINING_OPTIONS"], arch=arch),
                           started_by_id=user.id if user else None, progress={"phase": "queued"})
    db.session.add(version)
    db.session.commit()
    # two requests at the same moment both pass the check above: the later row gives way
    if running_training(before_id=version.id) is not None:
        db.session.delete(version)
        db.session.commit()
        raise ModelVersionError(409, "another retraining was started at the same moment")
    current_app.extensions["celery"].send_task(TRAIN_TASK, args=[version.id])
    return version


# --- activation --------------------------------------------------------------------------------

def activate(version: ModelVersion | None) -> None:
    """Make ``version`` the only active one (None: no row, the built-in bundle), then re-embed."""
    if version is not None and version.status != "ready":
        raise ModelVersionError(409, f"version {version.id} is {version.status}; only a ready version can be "
                                     "activated")
    others = db.update(ModelVersion).where(ModelVersion.is_active.is_(True))
    if version is not None:
        others = others.where(ModelVersion.id != version.id)
        version.is_active = True
        version.activated_at = utcnow()
    db.session.execute(others.values(is_active=False))
    db.session.commit()
    # None: every reference photo whose embedding is missing or from another model
    current_app.extensions["celery"].send_task(EMBED_TASK, args=[None])


def active_version() -> ModelVersion | None:
    return db.session.scalars(db.select(ModelVersion).filter_by(is_active=True)).first()


def get(version_id: int) -> ModelVersion | None:
    return db.session.get(ModelVersion, version_id)


def all_versions() -> list[ModelVersion]:
    """Every row, newest first."""
    return list(db.session.scalars(db.select(ModelVersion).order_by(ModelVersion.id.desc())))


# --- registering a bundle built elsewhere ------------------------------------------------------

def register_bundle(bundle_dir: str | Path, make_active: bool = False) -> ModelVersion:
    """Record an existing bundle directory as a ready version (``flask models register``)."""
    path = Path(bundle_dir).resolve()
    meta, labels = _read_json(path / "bundle.json"), _read_json(path / "labels.json")
    if not isinstance(meta, dict) or not meta.get("version") or not isinstance(labels, list):
        raise ModelVersionError(400, f"{path} is not a model bundle (bundle.json needs a version, labels.json a list)")
    metrics = _read_json(path / "metrics.json", missing_ok=True)
    if db.session.scalars(db.select(ModelVersion).filter_by(version=meta["version"])).first():
        raise ModelVersionError(409, f"version {meta['version']} is already registered")
    now = utcnow()
    version = ModelVersion(
        version=meta["version"], bundle_dir=str(path), arch=meta.get("arch", "unknown"), status="ready",
        classes=labels, metrics=_stored_metrics(metrics), settings={"registered_from": str(path)},
        created_at=now, finished_at=now,
    )
    db.session.add(version)
    db.session.commit()
    if make_active:
        activate(version)
    return version


def _read_json(path: Path, missing_ok: bool = False):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ModelVersionError(400, f"not a model bundle: {path.name} is missing in {path.parent}") from None
    except (OSError, ValueError) as exc:
        raise ModelVersionError(400, f"cannot read {path}: {exc}") from None


def _stored_metrics(metrics) -> dict | None:
    """metrics.json without the threshold sweep (hundreds of points, plotted in rejection.png)."""
    if not isinstance(metrics, dict):
        return None
    return {key: value for key, value in metrics.items() if key != "rejection_curve"}


# --- reading bundles: the built-in one, reports, plots -----------------------------------------

def builtin_dir() -> Path:
    """The bundle workers serve when no version is active."""
    return Path(current_app.config["MODEL_BUNDLE"] or SHIPPED)


def builtin_info() -> dict:
    """The built-in bundle's bundle.json, labels.json and metrics.json (each {} when unreadable)."""
    path = builtin_dir()
    return {name: _read_json_or_empty(path / f"{name}.json") for name in ("bundle", "labels", "metrics")}


def _read_json_or_empty(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def bundle_path(version: ModelVersion | None) -> Path | None:
    """The version's bundle directory (None: the built-in one); None when it has none yet."""
    if version is None:
        return builtin_dir()
    return Path(version.bundle_dir) if version.bundle_dir else None


def report_text(version: ModelVersion | None) -> str | None:
    """The bundle's report.md as plain text (shown escaped), or None."""
    folder = bundle_path(version)
    if folder is None:
        return None
    try:
        with open(folder / "report.md", "rb") as file:
            return file.read(MAX_REPORT_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def plot_file(version: ModelVersion | None, name: str) -> Path | None:
    """A plot of the bundle, only by a name in PLOTS and only a file directly inside the bundle."""
    folder = bundle_path(version)
    if name not in PLOTS or folder is None:
        return None
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():  # e.g. a symlink leading elsewhere
        return None
    return path


def plots(version: ModelVersion | None) -> list[str]:
    return [name for name in PLOTS if plot_file(version, name) is not None]


# --- JSON --------------------------------------------------------------------------------------

def metrics_summary(metrics: dict | None) -> dict:
    """The headline numbers, from a metrics.json as ``ml.evaluate`` writes it or a flat summary."""
    metrics = metrics or {}
    found = metrics.get("rejection")
    rejection: dict = found if isinstance(found, dict) else {}
    return {
        "top1": metrics.get("top1"),
        "top5": metrics.get("top5"),
        "negatives_rejected": metrics.get("negatives_rejected", rejection.get("negatives_rejected")),
        "accepted_correct": metrics.get("accepted_correct", rejection.get("landmarks_accepted_correct")),
        "test_photos": metrics.get("test_photos"),
    }


def version_json(version: ModelVersion) -> dict:
    return {
        "id": version.id,
        "version": version.version,
        "arch": version.arch,
        "status": version.status,
        "is_active": version.is_active,
        "shipped": False,
        "classes": version.classes or [],
        "metrics": metrics_summary(version.metrics),
        "progress": version.progress or {},
        "settings": version.settings or {},
        "error": version.error,
        "started_by": version.started_by.email if version.started_by else None,
        "created_at": iso(version.created_at),
        "finished_at": iso(version.finished_at),
        "activated_at": iso(version.activated_at),
    }


def builtin_json(is_active: bool) -> dict:
    info = builtin_info()
    return {
        "id": SHIPPED_KEY,
        "version": info["bundle"].get("version"),
        "arch": info["bundle"].get("arch"),
        "status": "ready",
        "is_active": is_active,
        "shipped": True,
        "classes": info["labels"] if isinstance(info["labels"], list) else [],
        "metrics": metrics_summary(info["metrics"]),
        "progress": {},
        "settings": {},
        "error": None,
        "started_by": None,
        "created_at": None,
        "finished_at": None,
        "activated_at": None,
    }


def listing() -> list[dict]:
    """Every version as JSON, newest first, then the built-in bundle (active when no row is)."""
    rows = [version_json(v) for v in all_versions()]
    return rows + [builtin_json(is_active=not any(row["is_active"] for row in rows))]
