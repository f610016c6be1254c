"""The model's life in a worker process: loaded once, after fork, with one CPU thread.

The prefork pool's parent never imports TensorFlow or LiteRT; each child loads the
bundle in ``worker_process_init`` and keeps it for every task it runs. Run one
process per CPU core (``--concurrency`` = cores) with one intra-op thread each:
that beats fewer processes with more threads for single-image requests.
"""
from __future__ import annotations

import logging
import os

from celery.signals import worker_process_init
from flask import current_app

log = logging.getLogger(__name__)
_predictor = None


def limit_threads(threads: int) -> None:
    """Must run before the ML runtime is imported to take effect."""
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_predictor(bundle_dir: str | None, threads: int = 1):
    limit_threads(threads)
    from ml.predictor import Predictor  # imported here: the parent process stays free of TensorFlow

    predictor = Predictor(bundle_dir=bundle_dir, threads=threads)
    log.info("model %s loaded (%d classes) in process %d", predictor.version, len(predictor.labels), os.getpid())
    return predictor


def get_predictor():
    """The process's predictor; loaded now if the pool did not preload it (solo pool, eager tests)."""
    global _predictor
    if _predictor is None:
        _predictor = load_predictor(current_app.config["MODEL_BUNDLE"], current_app.config["INFERENCE_THREADS"])
    return _predictor


@worker_process_init.connect
def _load_in_child(**_kwargs) -> None:
    from worker.main import flask_app

    with flask_app.app_context():
        try:
            get_predictor()
        except Exception:  # logged here; each task then retries the load and reports the failure
            log.exception("could not load the model bundle in process %d", os.getpid())


def loaded_version() -> str | None:
    """The version id of the model this process serves now, or None before it is loaded."""
    return _predictor.version if _predictor is not None else None
