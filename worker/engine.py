"""The model's life in a worker process: the active version, its reference photos, one batch thread.

The engine follows the database (which model version is active, the reference photos, the catalog's
keys and positions) and hands each batch to ``ml.serving.recognise``, the serving policy, which knows
no database.

Each process has one ``Engine``, created after fork (the prefork parent never imports TensorFlow or
LiteRT). Before every batch, at most every ``MODEL_CHECK_S``, the engine asks the database which model
version is active and whether reference photos changed, and switches without a restart: an admin's
activation reaches every worker within seconds. Batches come from ``worker.batching.MicroBatcher``.

Model threads (``INFERENCE_THREADS``, 0 = auto): one per prefork child (one process per core), every
core for a threads or solo pool (one process per host or GPU). Running several threads-pool processes
per host — fastest on CPU, measured — set it to 1.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from flask import Flask, current_app
from PIL import Image

from ml.result import Result
from ml.serving import Knowledge, Photo, recognise
from webapp.extensions import db
from webapp.models import Landmark, ModelVersion, ReferencePhoto
from worker.batching import MicroBatcher

if TYPE_CHECKING:
    from ml.fewshot import FewShotRule, ReferenceIndex
    from ml.places import PlacesRule
    from ml.predictor import Predictor

log = logging.getLogger(__name__)
_engine: Engine | None = None
_engine_lock = threading.Lock()
_pool_threads = 1  # model threads when INFERENCE_THREADS is 0 (auto): set by the pool's start signal


def limit_threads(threads: int) -> None:
    """Must run before the ML runtime is imported to take effect."""
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_predictor(bundle_dir: str | None, threads: int = 1, runtime: str = "auto", max_batch: int = 32,
                   fast_path: bool = True):
    limit_threads(threads)
    from ml.predictor import Predictor  # imported here: the parent process stays free of TensorFlow

    predictor = Predictor(bundle_dir=bundle_dir, threads=threads, runtime=runtime, max_batch=max_batch,
                          fast_path=fast_path)
    log.info("model %s loaded (%s%s, %d classes, %d threads) in process %d", predictor.version, predictor.runtime,
             " with its int8 fast path" if predictor.fast_path else "", len(predictor.labels), threads, os.getpid())
    return predictor


@dataclass
class Prepared:
    photo: Photo  # what ml.serving needs
    image: Image.Image  # kept to preprocess again if the model changes before its batch runs
    version: str  # the model version ``photo.array`` was made for


class Engine:
    def __init__(self, app: Flask):
        from ml.location import LocationRule

        self.app = app
        self.check_every = float(app.config["MODEL_CHECK_S"])
        # both set by refresh(force=True) below, which fails loudly when no model can be loaded
        self.predictor: Predictor = None  # type: ignore[assignment]
        self.bundle_dir: str | None = None
        # ml.fewshot.ReferenceIndex: the bundle's trained references + the enrolled photos
        self.references: ReferenceIndex | None = None
        self.enrolled = False  # whether any enrolled landmark is in it (only then can a reference match win)
        self.index_stamp: tuple | None = None
        self.rule: FewShotRule = None  # type: ignore[assignment]
        self.places_rule: PlacesRule | None = None
        self.trained_references: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0), np.float32))
        self.landmark_ids: dict[str, int] = {}
        self.catalog_keys: frozenset[str] = frozenset()
        self.coordinates: dict[str, tuple[float, float]] = {}  # landmark key → catalog (lat, lon)
        self.location_rule = LocationRule()  # its calibrated defaults (bench/location.py)
        self.checked_at = 0.0
        self._refresh_lock = threading.Lock()  # the batch thread and the embedding task may both refresh
        self.refresh(force=True)  # fails loudly if no model can be loaded at all
        self.batcher = MicroBatcher(self._run_batch, max_batch=int(app.config["INFERENCE_MAX_BATCH"]),
                                    max_wait_s=float(app.config["INFERENCE_MAX_WAIT_MS"]) / 1000)

    @property
    def version(self) -> str:
        return self.predictor.version

    @property
    def knowledge(self) -> Knowledge:
        """What ``ml.serving`` needs beside the model, as this engine follows it from the database."""
        return Knowledge(self.rule, self.references, self.enrolled, self.places_rule, self.location_rule,
                         self.coordinates, self.catalog_keys)

    @property
    def decode_size(self) -> int:
        """Photos are decoded at no less than 1.5 times the model's input side (see ``ml.images.to_array``): a
        shown copy of a phone photo (1280 × 960) at half scale; measured, the same answers as at twice the side
        (199 of 200 photos; the other scored 0.174 against 0.204 at a 0.185 bar), half the decoding and resizing."""
        return 3 * self.predictor.img_size // 2

    @contextmanager
    def slot(self, reference: bool = False) -> Iterator[Callable[..., Result]]:
        """Announce an image while it is decoded; yields ``run(image, position=None) -> Result`` (batched
        with others; ``position``: where it was taken, (lat, lon) from its EXIF)."""
        with self.batcher.reserve() as submit:
            yield lambda image, position=None: submit(self._prepare(image, reference, position))

    def _prepare(self, image: Image.Image, reference: bool, position: tuple[float, float] | None = None) -> Prepared:
        from webapp.geo import in_vietnam

        predictor = self.predictor
        abroad = position is not None and not in_vietnam(*position)
        return Prepared(Photo(predictor.preprocess([image]), reference, position, abroad), image, predictor.version)

    def _run_batch(self, items: list[Prepared]) -> list[Result]:
        with self.app.app_context():
            self.refresh()
        predictor = self.predictor
        for item in items:
            if item.version != predictor.version:  # the model changed while it waited
                item.photo.array = predictor.preprocess([item.image])
        return recognise(predictor, [item.photo for item in items], self.knowledge)

    # -- what to serve --------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Follow the active model version and the reference photos (rate-limited by MODEL_CHECK_S)."""
        with self._refresh_lock:
            now = time.monotonic()
            if not force and now - self.checked_at < self.check_every:
                return
            self.checked_at = now
            try:
                self._follow_active_version()
                self._follow_references()
                self._follow_catalog()
            except Exception:
                if self.predictor is None:
                    raise
                db.session.rollback()
                log.warning("could not check the active model; serving %s meanwhile", self.version, exc_info=True)

    def invalidate(self) -> None:
        """Look again at the next batch (this process just changed what it should serve)."""
        self.checked_at = 0.0

    def _follow_active_version(self) -> None:
        from ml.fewshot import FewShotRule, load_references
        from ml.places import PlacesRule

        try:
            row = db.session.execute(db.select(ModelVersion.bundle_dir)
                                     .where(ModelVersion.is_active, ModelVersion.status == "ready")).first()
        except Exception:
            if self.predictor is not None:
                raise
            log.warning("database unreachable at start; serving the configured bundle", exc_info=True)
            row = None
        target = row.bundle_dir if row else self.app.config["MODEL_BUNDLE"]
        if self.predictor is not None and target == self.bundle_dir:
            return
        predictor = load_predictor(target, int(self.app.config["INFERENCE_THREADS"]) or _pool_threads,
                                   self.app.config["INFERENCE_RUNTIME"], int(self.app.config["INFERENCE_MAX_BATCH"]),
                                   bool(self.app.config["INFERENCE_FAST_PATH"]))
        if self.predictor is not None:
            log.info("switched from model %s to %s without restart", self.version, predictor.version)
        self.predictor, self.bundle_dir = predictor, target
        self.rule = FewShotRule.from_bundle(predictor.info.extra)
        self.trained_references = load_references(predictor.info.path)  # the bundle's own landmarks
        # places are found among every landmark's references: none when the bundle has none of its own
        self.places_rule = PlacesRule.from_bundle(predictor.info.extra) if len(self.trained_references[1]) else None
        self.references, self.enrolled, self.index_stamp = None, False, None

    def _follow_catalog(self) -> None:
        """Class keys and enrolled slugs → landmark ids and positions, so a result needs no catalog query."""
        keys: dict[str, int]
        coordinates: dict[str, tuple[float, float]]
        keys, coordinates = {}, {}
        rows = db.session.execute(db.select(Landmark.id, Landmark.class_key, Landmark.slug, Landmark.lat, Landmark.lon))
        for landmark_id, class_key, slug, lat, lon in rows:
            keys.setdefault(slug, landmark_id)
            if class_key:
                keys[class_key] = landmark_id  # a model class key wins over an equal slug
            if lat is not None and lon is not None:
                coordinates[class_key or slug] = (float(lat), float(lon))
        self.landmark_ids, self.catalog_keys, self.coordinates = keys, frozenset(keys), coordinates

    def landmark_id(self, key: str | None) -> int | None:
        """The catalog landmark of a model class key or of an enrolled landmark's slug."""
        return self.landmark_ids.get(key) if key else None

    def _follow_references(self) -> None:
        from ml.fewshot import ReferenceIndex

        mine = ReferencePhoto.embedding_version == self.version
        stamp = tuple(db.session.execute(
            db.select(db.func.count(), db.func.max(ReferencePhoto.id), db.func.sum(ReferencePhoto.id),
                      db.func.max(ReferencePhoto.embedded_at)).where(mine)).one())
        if stamp == self.index_stamp:
            return
        rows = db.session.execute(
            db.select(ReferencePhoto.embedding, Landmark.class_key, Landmark.slug)
            .join(Landmark, ReferencePhoto.landmark_id == Landmark.id).where(mine)).all()
        enrolled = [class_key or slug for _, class_key, slug in rows]
        trained_keys, trained_vectors = self.trained_references
        size = len(trained_vectors[0]) if len(trained_vectors) else None
        vectors, keys = [], []
        for (emb, _, _), key in zip(rows, enrolled, strict=False):
            vector = np.frombuffer(emb, np.float32)
            if size is None or len(vector) == size:  # a signature of an older format cannot be compared: skipped
                vectors.append(vector)
                keys.append(key)
        self.references = (ReferenceIndex(keys + trained_keys, np.stack(vectors + list(trained_vectors)), self.rule.k)
                           if vectors or len(trained_vectors) else None)
        self.enrolled = bool(vectors)
        self.index_stamp = stamp
        log.info("reference index: %d photos of %d enrolled landmarks for model %s", len(rows), len(set(enrolled)),
                 self.version)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def get_engine() -> Engine:
    """The process's engine; created now if the pool did not preload it (solo pool, eager tests)."""
    global _engine
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # current_app is a LocalProxy
    with _engine_lock:
        if _engine is None or _engine.app is not app:  # tests build many apps in one process
            _engine = Engine(app)
        return _engine


def loaded_version() -> str | None:
    """The version id of the model this process serves now, or None before it is loaded."""
    return _engine.version if _engine is not None else None


def loaded_runtime() -> str | None:
    """The runtime (litert, tensorflow, jax, keras) of the model this process serves, or None."""
    return _engine.predictor.runtime if _engine is not None else None


def preload(app: Flask, queues: list[str], threads: int) -> None:
    """Load the model before the first task (worker/signals.py), with ``threads`` model threads when
    ``INFERENCE_THREADS`` is auto. Only inference workers serve a model."""
    global _pool_threads
    _pool_threads = threads
    if not {"inference", "inference-album"} & set(queues):  # a training or maintenance worker
        return
    with app.app_context():
        try:
            get_engine()
        except Exception:  # logged here; each task then retries the load and reports the failure
            log.exception("could not load the model bundle in process %d", os.getpid())
