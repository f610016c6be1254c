"""The landmark catalog: search with all pins on one map, one page per landmark, and what the recogniser knows."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp import model_versions
from webapp.extensions import db
from webapp.i18n import current_language
from webapp.models import Landmark, ReferencePhoto, fold

bp = Blueprint("catalog", __name__, url_prefix="/landmarks")

# what the recogniser makes of a landmark: trained on it, learnt it from editors' photos, or neither
RECOGNISED, LEARNT, UNKNOWN = "recognised", "learnt", "unknown"
STATUS_LABELS = {RECOGNISED: _l("Recognised"), LEARNT: _l("Learnt from photos"), UNKNOWN: _l("Not recognised yet")}
FILTERS = {"all": _l("All"), "recognised": _l("Recognised"), "not-yet": _l("Not yet")}  # ?status=


MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 8  # distinct words; each is one LIKE (SQLite refuses a query of ~1,000 of them)


def search_landmarks(query: str) -> list[Landmark]:
    words = list(dict.fromkeys(fold(query).split()))
    if len(query) > MAX_QUERY_CHARS or len(words) > MAX_QUERY_WORDS:
        abort(400, _("Search with at most %(words)s words and %(chars)s characters.",
                     words=MAX_QUERY_WORDS, chars=MAX_QUERY_CHARS))
    stmt = db.select(Landmark).order_by(Landmark.name_en)
    for word in words:
        stmt = stmt.where(Landmark.search_text.contains(word, autoescape=True))
    return list(db.session.scalars(stmt))


def pins(landmarks: list[Landmark]) -> list[dict]:
    lang = current_language()
    return [
        {"lat": lm.lat, "lon": lm.lon, "label": lm.name(lang), "url": url_for("catalog.detail", slug=lm.slug)}
        for lm in landmarks
    ]


def served_model() -> tuple[str | None, frozenset[str]]:
    """The version and class keys of the model the workers serve: the active version's bundle, else
    MODEL_BUNDLE (or the shipped one)."""
    version = model_versions.active_version()
    folder = model_versions.bundle_path(version)
    bundle_version, labels = _read_bundle(str(folder), _stamp(folder)) if folder else (None, frozenset())
    if version is None:
        return bundle_version, labels
    return version.version, labels or frozenset(version.classes or [])  # its record, should its files be unreadable


def _stamp(folder: Path) -> tuple[int, ...]:
    """Changes when the bundle's files are rewritten, so a bundle rebuilt in place is read again."""
    try:
        return tuple((folder / name).stat().st_mtime_ns for name in ("labels.json", "bundle.json"))
    except OSError:
        return ()


@lru_cache(maxsize=16)
def _read_bundle(folder: str, stamp: tuple[int, ...]) -> tuple[str | None, frozenset[str]]:
    """(version, class keys) from bundle.json and labels.json, with plain json: the web never loads a model.
    Cached per folder and ``stamp``."""
    try:
        meta = json.loads((Path(folder) / "bundle.json").read_text(encoding="utf-8"))
        labels = json.loads((Path(folder) / "labels.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, frozenset()
    if not isinstance(meta, dict) or not isinstance(labels, list):
        return None, frozenset()
    return meta.get("version"), frozenset(key for key in labels if isinstance(key, str))


def recogniser_status(landmarks: list[Landmark]) -> dict[int, str]:
    """Landmark id → RECOGNISED, LEARNT (reference photos embedded by the served model) or UNKNOWN."""
    version, labels = served_model()
    learnt = set(db.session.scalars(
        db.select(ReferencePhoto.landmark_id).distinct()
        .where(ReferencePhoto.embedding_version == version, ReferencePhoto.embedding.is_not(None))
    )) if version else set()
    return {lm.id: RECOGNISED if lm.class_key in labels else LEARNT if lm.id in learnt else UNKNOWN
            for lm in landmarks}


@bp.get("")
def index():
    query = request.args.get("q", "").strip()
    shown = request.args.get("status", "all")
    shown = shown if shown in FILTERS else "all"
    found = search_landmarks(query)
    status = recogniser_status(found)
    known = sum(1 for lm in found if status[lm.id] != UNKNOWN)
    landmarks = [lm for lm in found if shown == "all" or (status[lm.id] != UNKNOWN) == (shown == "recognised")]
    return render_template("landmarks.html", landmarks=landmarks, query=query, pins=pins(landmarks), status=status,
                           status_labels=STATUS_LABELS, filters=FILTERS, shown=shown, known=known, found=len(found))


@bp.get("/<slug>")
def detail(slug: str):
    landmark = db.first_or_404(db.select(Landmark).filter_by(slug=slug))
    status = recogniser_status([landmark])[landmark.id]
    return render_template("landmark.html", landmark=landmark, pins=pins([landmark]),
                           status_label=STATUS_LABELS[status])
