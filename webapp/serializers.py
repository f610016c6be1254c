"""The JSON shapes of landmarks and recognitions, used by the API and the pages alike."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import url_for

from webapp.editing import embedding_state
from webapp.extensions import db
from webapp.models import Landmark, Recognition, ReferencePhoto


def landmark_json(landmark: Landmark) -> dict:
    return {
        "slug": landmark.slug,
        "class_key": landmark.class_key,
        "name_vi": landmark.name_vi,
        "name_en": landmark.name_en,
        "province": landmark.province,
        "lat": landmark.lat,
        "lon": landmark.lon,
    }


def alternatives(rec: Recognition) -> list[tuple[str, float, Landmark | None]]:
    """The model's top-5 as (class_key, confidence, catalog landmark or None), best first."""
    top5 = rec.top5 or []
    keys = [key for key, _ in top5]
    found = db.session.scalars(db.select(Landmark).where(Landmark.class_key.in_(keys))).all() if keys else []
    by_key = {lm.class_key: lm for lm in found}
    return [(key, float(prob), by_key.get(key)) for key, prob in top5]


def display_name(class_key: str) -> str:
    return class_key.replace("_", " ")


def recognition_json(rec: Recognition) -> dict:
    return {
        "id": rec.id,
        "status": rec.status,
        "landmark": landmark_json(rec.landmark) if rec.landmark else None,
        "confidence": rec.confidence,
        "alternatives": [
            {
                "slug": lm.slug if lm else None,
                "class_key": key,
                "name_en": lm.name_en if lm else display_name(key),
                "confidence": prob,
            }
            for key, prob, lm in alternatives(rec)
        ],
        "model_version": rec.model_version,
        "matched_by": rec.matched_by,  # "classifier" or "reference" (a landmark enrolled from reference photos)
        "created_at": _iso(rec.created_at),
        "finished_at": _iso(rec.finished_at),
        "error": rec.error,
        "feedback": feedback_json(rec),
    }


def feedback_json(rec: Recognition) -> dict | None:
    """The visitor's answer to "Is this right?" and where its review stands; None if not given."""
    if rec.feedback is None:
        return None
    return {
        "answer": rec.feedback,
        "landmark": rec.corrected_landmark.slug if rec.corrected_landmark else None,
        "review_status": rec.review_status,
        "given_at": _iso(rec.feedback_at),
    }


def status_url(rec: Recognition) -> str:
    return url_for("api.get_recognition", rec_id=rec.id)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes; they are stored in UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def landmark_detail_json(landmark: Landmark) -> dict:
    """A landmark with its descriptions and reference-photo counts (the editors' API)."""
    states = [embedding_state(photo) for photo in landmark.reference_photos]
    return {**landmark_json(landmark), "description_vi": landmark.description_vi,
            "description_en": landmark.description_en,
            "photos": {"total": len(states), "embedded": states.count("embedded")}}


def reference_photo_json(photo: ReferencePhoto) -> dict:
    """A reference photo; ``url`` serves it (a JPEG) to a bearer of the editor role."""
    return {
        "id": photo.id,
        "landmark": photo.landmark.slug,
        "url": url_for("editor_api.photo_file", slug=photo.landmark.slug, photo_id=photo.id),
        "source": photo.source,
        "format": photo.image_format,
        "sha256": photo.sha256,
        "embedding": {"state": embedding_state(photo), "version": photo.embedding_version,
                      "embedded_at": _iso(photo.embedded_at), "error": photo.error},
        "created_at": _iso(photo.created_at),
    }
