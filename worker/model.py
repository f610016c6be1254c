"""The model's life in a worker process: the active version, its reference photos, one batch thread.

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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from celery.signals import worker_process_init, worker_ready
from flask import Flask, current_app
from PIL import Image

from webapp.extensions import db
from webapp.models import Landmark, ModelVersion, ReferencePhoto
from worker.batching import MicroBatcher
from worker.layout import usable_cores

log = logging.getLogger(__name__)
_engine: "Engine | None" = None
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
    image: Image.Image
    array: np.ndarray  # (1, S, S, 3), normalised for the model version below
    version: str
    reference: bool  # a reference photo: its signature is stored, so it always gets the mirror view


@dataclass
class Outcome:
    label: str | None  # landmark key (class key or enrolled slug) of a sure or maybe answer; None: unknown
    score: float
    top5: list
    matched_by: str  # "classifier" or "reference"
    signature: np.ndarray  # for few-shot matching (ml.fewshot.signature)
    version: str
    batch_size: int
    model_ms: float  # the batch's model time
    tier: str  # ml.tiers: "sure", "maybe" or "unknown"
    suggestions: list[str]  # the candidates (maybe) or the closest landmarks (unknown)
    places: list  # [[landmark key, similarity], ...] that look like the photo (maybe and unknown only)


class Engine:
    def __init__(self, app: Flask):
        self.app = app
        self.check_every = float(app.config["MODEL_CHECK_S"])
        self.predictor = None
        self.bundle_dir: str | None = None
        self.references = None  # ml.fewshot.ReferenceIndex: the bundle's trained references + the enrolled photos
        self.enrolled = False  # whether any enrolled landmark is in it (only then can a reference match win)
        self.index_stamp = None
        self.rule = None
        self.places_rule = None
        self.trained_references: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0), np.float32))
        self.landmark_ids: dict[str, int] = {}
        self.checked_at = 0.0
        self._refresh_lock = threading.Lock()  # the batch thread and the embedding task may both refresh
        self.refresh(force=True)  # fails loudly if no model can be loaded at all
        self.batcher = MicroBatcher(self._run_batch, max_batch=int(app.config["INFERENCE_MAX_BATCH"]),
                                    max_wait_s=float(app.config["INFERENCE_MAX_WAIT_MS"]) / 1000)

    @property
    def version(self) -> str:
        return self.predictor.version

    @property
    def decode_size(self) -> int:
        """Photos are decoded at no less than 1.5 times the model's input side (see ``ml.images.to_array``): a
        shown copy of a phone photo (1280 × 960) at half scale; measured, the same answers as at twice the side
        (199 of 200 photos; the other scored 0.174 against 0.204 at a 0.185 bar), half the decoding and resizing."""
        return 3 * self.predictor.img_size // 2

    @contextmanager
    def slot(self, reference: bool = False) -> Iterator[Callable[[Image.Image], Outcome]]:
        """Announce an image while it is decoded; yields ``run(image) -> Outcome`` (batched with others)."""
        with self.batcher.reserve() as submit:
            yield lambda image: submit(self._prepare(image, reference))

    def _prepare(self, image: Image.Image, reference: bool) -> Prepared:
        predictor = self.predictor
        return Prepared(image, predictor.preprocess([image]), predictor.version, reference)

    def _run_batch(self, items: list[Prepared]) -> list[Outcome]:
        from ml.fewshot import add_mirrors, decide_all, reference_may_win, signature

        with self.app.app_context():
            self.refresh()
        predictor, references, rule, places_rule = self.predictor, self.references, self.rule, self.places_rule
        index = references if self.enrolled else None  # few-shot matching
        arrays = [p.array if p.version == predictor.version else predictor.preprocess([p.image]) for p in items]
        batch = np.concatenate(arrays)
        started = time.perf_counter()
        predictions = predictor.predict_batch(batch)
        # the mirror view only where the signature matters: references, and photos an enrolled landmark may win
        mirrored = [i for i, (item, p) in enumerate(zip(items, predictions))
                    if item.reference or (index is not None and reference_may_win(p, rule))]
        if mirrored and predictor.fast_path:  # signatures come from the float model (see ml.fastpath)
            for i, exact in zip(mirrored, predictor.predict_batch(batch[mirrored], exact=True)):
                predictions[i] = exact
        add_mirrors(predictor, batch[mirrored], [predictions[i] for i in mirrored])
        model_ms = (time.perf_counter() - started) * 1000
        signatures = np.stack([signature(p, predictor.labels, rule.profile) for p in predictions])
        scores = index.scores(signatures) if index is not None else None  # matching and places share them
        decisions = decide_all(predictions, index, rule, predictor.labels, signatures, scores)
        unsure = [i for i, (item, d) in enumerate(zip(items, decisions)) if d.tier != "sure" and not item.reference]
        if unsure and references is not None and places_rule is not None:
            unsure_scores = scores[unsure] if scores is not None else references.scores(signatures[unsure])
            found = self._places(references, places_rule, unsure_scores, [decisions[i] for i in unsure])
            places = dict(zip(unsure, found))
        else:
            places = {}
        return [Outcome(d.label, float(d.score), [[k, float(v)] for k, v in d.top5], d.matched_by, sig,
                        predictor.version, len(items), model_ms, d.tier, list(d.suggestions), places.get(i, []))
                for i, (d, sig) in enumerate(zip(decisions, signatures))]

    def _places(self, references, places_rule, scores: np.ndarray, decisions: list) -> list[list]:
        """"Places that look like this" (``ml.places``) of unsure photos, from their reference ``scores``:
        catalog landmarks only, without the candidates a maybe answer already names."""
        from ml.places import similar_places

        elsewhere = tuple(key for key in references.keys if self.landmark_id(key) is None)  # not in the catalog
        found = []
        for row, decision in zip(scores, decisions):
            named = tuple(decision.suggestions) if decision.tier == "maybe" else ()
            places = similar_places(row, references.keys, places_rule, elsewhere + named)
            found.append([[key, similarity] for key, similarity in places])
        return found

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
        """Class keys and enrolled slugs → landmark ids, so a result needs no catalog query."""
        keys = {}
        for landmark_id, class_key, slug in db.session.execute(db.select(Landmark.id, Landmark.class_key, Landmark.slug)):
            keys.setdefault(slug, landmark_id)
            if class_key:
                keys[class_key] = landmark_id  # a model class key wins over an equal slug
        self.landmark_ids = keys

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
        for (emb, _, _), key in zip(rows, enrolled):
            vector = np.frombuffer(emb, np.float32)
            if size is None or len(vector) == size:  # a signature of an older format cannot be compared: skipped
                vectors.append(vector), keys.append(key)
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
    app = current_app._get_current_object()
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


@worker_process_init.connect
def _load_in_child(**_kwargs) -> None:
    """Prefork: each pool process loads the model as it starts (one model thread: a process per core)."""
    _preload(1)


@worker_ready.connect
def _load_in_worker(sender=None, **_kwargs) -> None:
    """Threads and solo pools run tasks in this process: load the model before the first task."""
    from celery.concurrency.prefork import TaskPool as PreforkPool

    if not isinstance(getattr(sender, "pool", None), PreforkPool):  # prefork children load their own
        _preload(usable_cores())


def _preload(threads: int) -> None:
    global _pool_threads
    from worker.main import celery_app, flask_app

    _pool_threads = threads
    if "inference" not in celery_app.amqp.queues.consume_from:  # a training or maintenance worker
        return
    with flask_app.app_context():
        try:
            get_engine()
        except Exception:  # logged here; each task then retries the load and reports the failure
            log.exception("could not load the model bundle in process %d", os.getpid())
