"""The landmark catalog: search with all pins on one map, and one page per landmark."""
from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from webapp.extensions import db
from webapp.i18n import current_language
from webapp.models import Landmark, fold

bp = Blueprint("catalog", __name__, url_prefix="/landmarks")


def search_landmarks(query: str) -> list[Landmark]:
    stmt = db.select(Landmark).order_by(Landmark.name_en)
    for word in fold(query).split():
        stmt = stmt.where(Landmark.search_text.contains(word, autoescape=True))
    return list(db.session.scalars(stmt))


def pins(landmarks: list[Landmark]) -> list[dict]:
    lang = current_language()
    return [
        {"lat": lm.lat, "lon": lm.lon, "label": lm.name(lang), "url": url_for("catalog.detail", slug=lm.slug)}
        for lm in landmarks
    ]


@bp.get("")
def index():
    query = request.args.get("q", "").strip()
    landmarks = search_landmarks(query)
    return render_template("landmarks.html", landmarks=landmarks, query=query, pins=pins(landmarks))


@bp.get("/<slug>")
def detail(slug: str):
    landmark = db.first_or_404(db.select(Landmark).filter_by(slug=slug))
    return render_template("landmark.html", landmark=landmark, pins=pins([landmark]))
