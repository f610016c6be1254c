"""The JSON shapes of landmarks and recognitions, used by the API and the pages alike."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import url_for

from webapp import geo
from webapp.editing import embedding_state
from webapp.extensions import db
from webapp.models import Landmark, Recognition, ReferencePhoto
from webapp.references import cover_photos


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


def landmarks_by_key(keys: list[str]) -> dict[str, Landmark]:
    """The catalog landmarks of model keys: a class key, or an enrolled landmark's slug (a class key wins)."""
    wanted = set(keys)
    if not wanted:
        return {}
    found = db.session.scalars(db.select(Landmark).where(
        db.or_(Landmark.class_key.in_(wanted), Landmark.slug.in_(wanted)))).all()
    by_key = {lm.slug: lm for lm in found if lm.slug in wanted}
    by_key.update({lm.class_key: lm for lm in found if lm.class_key in wanted})
    return by_key


def alternatives(rec: Recognition) -> list[tuple[str, float, Landmark | None]]:
    """The model's top-5 as (class_key, confidence, catalog landmark or None), best first."""
    top5 = rec.top5 or []
    by_key = landmarks_by_key([key for key, _ in top5])
    return [(key, float(prob), by_key.get(key)) for key, prob in top5]


def display_name(class_key: str) -> str:
    return class_key.replace("_", " ")


@dataclass
class Suggestion:
    key: str  # the model's key (class key or enrolled slug)
    landmark: Landmark | None  # None: not in the catalog
    probability: float | None  # the classifier's, when the key is in its top-5


@dataclass
class Place:
    landmark: Landmark
    similarity: float
    photo: ReferencePhoto | None  # its representative photo


@dataclass
class Answer:
    """How sure a finished recognition is, and what it suggests (pages and API alike)."""

    tier: str | None  # "sure", "maybe", "unknown"; None until done
    landmark: Landmark | None = None  # a sure answer's landmark only
    suggestions: list[Suggestion] = field(default_factory=list)  # maybe: the candidates; unknown: the closest
    places: list[Place] = field(default_factory=list)  # places that look like this (maybe and unknown)
    nearby: list[tuple[Landmark, float]] = field(default_factory=list)  # a sure answer's: catalog landmarks, km

    @property
    def answered(self) -> Landmark | None:
        """The landmark the answer names: a sure answer's, or a maybe answer's first candidate."""
        if self.landmark is not None or self.tier != "maybe" or not self.suggestions:
            return self.landmark
        return self.suggestions[0].landmark


def answer(rec: Recognition) -> Answer:
    if rec.status != "done":
        return Answer(None)
    top5 = rec.top5 or []
    tier = rec.tier or ("sure" if rec.label else "unknown")  # a result from before tiers
    if tier == "sure":
        return Answer(tier, rec.landmark, nearby=nearby_landmarks(rec.landmark))  # type: ignore[arg-type]  # a Landmark: db.relationship is typed as its property
    keys = rec.suggestions if rec.suggestions is not None else [key for key, _ in top5[:3]]
    places = [(key, similarity) for key, similarity in rec.places or []]
    found = landmarks_by_key(keys + [key for key, _ in places])
    probability = {key: float(prob) for key, prob in top5}
    in_catalog = [(found[key], similarity) for key, similarity in places if key in found]  # removed since: left out
    covers = cover_photos([lm for lm, _ in in_catalog])
    return Answer(tier, None, [Suggestion(key, found.get(key), probability.get(key)) for key in keys],
                  [Place(lm, float(similarity), covers.get(lm.id)) for lm, similarity in in_catalog])


def nearby_landmarks(landmark: Landmark | None) -> list[tuple[Landmark, float]]:
    """Catalog landmarks near ``landmark``'s catalog position, nearest first, with their distance in km."""
    if landmark is None:
        return []
    others = db.session.scalars(db.select(Landmark).where(Landmark.id != landmark.id)).all()
    return geo.nearby((landmark.lat, landmark.lon), [(lm, lm.lat, lm.lon) for lm in others])


def nearby_json(landmark: Landmark, km: float) -> dict:
    return {"slug": landmark.slug, "name_vi": landmark.name_vi, "name_en": landmark.name_en,
            "province": landmark.province, "distance_km": km, "url": landmark_url(landmark)}


def landmark_url(landmark: Landmark | None) -> str | None:
    return url_for("catalog.detail", slug=landmark.slug) if landmark else None


def cover_url(photo: ReferencePhoto | None) -> str | None:
    return url_for("pages.landmark_photo", photo_id=photo.id) if photo else None


def suggestion_json(s: Suggestion) -> dict:
    lm = s.landmark
    return {"key": s.key, "slug": lm.slug if lm else None, "name_vi": lm.name_vi if lm else display_name(s.key),
            "name_en": lm.name_en if lm else display_name(s.key), "probability": s.probability,
            "url": landmark_url(lm)}


def place_json(p: Place) -> dict:
    lm = p.landmark
    return {"slug": lm.slug, "name_vi": lm.name_vi, "name_en": lm.name_en, "province": lm.province,
            "similarity": p.similarity, "url": landmark_url(lm), "photo_url": cover_url(p.photo)}


def recognition_json(rec: Recognition) -> dict:
    found = answer(rec)
    return {
        "id": rec.id,
        "status": rec.status,
        "tier": found.tier,
        "landmark": landmark_json(found.landmark) if found.landmark else None,
        "suggestions": [suggestion_json(s) for s in found.suggestions],
        "places": [place_json(p) for p in found.places],
        "nearby": [nearby_json(lm, km) for lm, km in found.nearby],
        # where the photo was taken, never its coordinates: "near"/"far"/"abroad" the catalog (None: no GPS)
        "taken_at": rec.taken_at.isoformat() if rec.taken_at else None,  # the camera's local time, no zone
        "position": rec.position,
        "distance_km": round(rec.distance_km, 1) if rec.distance_km is not None else None,
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
        value = value.replace(tzinfo=UTC)
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
