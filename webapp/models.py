"""Database models: the landmark catalog and the visitors' recognitions."""
from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime, timezone

from sqlalchemy import event

from webapp.extensions import db

STATUSES = ("queued", "running", "done", "failed")
FINISHED = ("done", "failed")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def fold(text: str | None) -> str:
    """Lower-case text without Vietnamese diacritics, so "ha long" finds "Vịnh Hạ Long"."""
    text = (text or "").replace("đ", "d").replace("Đ", "D")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())


class Landmark(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    slug = db.Column(db.String(80), unique=True, nullable=False)
    class_key = db.Column(db.String(80), unique=True, nullable=True)  # the model's class, if it has one
    name_vi = db.Column(db.String(200), nullable=False)
    name_en = db.Column(db.String(200), nullable=False)
    province = db.Column(db.String(120), nullable=False, default="")
    lat = db.Column(db.Float, nullable=False)
    lon = db.Column(db.Float, nullable=False)
    description_vi = db.Column(db.Text, nullable=False, default="")
    description_en = db.Column(db.Text, nullable=False, default="")
    search_text = db.Column(db.Text, nullable=False, default="")  # folded names + province
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)

    def name(self, locale: str) -> str:
        return self.name_vi if locale == "vi" else self.name_en

    def description(self, locale: str) -> str:
        return self.description_vi if locale == "vi" else self.description_en


@event.listens_for(Landmark, "before_insert")
@event.listens_for(Landmark, "before_update")
def _refresh_search_text(_mapper, _connection, landmark: Landmark) -> None:
    landmark.search_text = fold(f"{landmark.name_vi} | {landmark.name_en} | {landmark.province} | {landmark.slug}")


def new_public_id() -> str:
    return secrets.token_urlsafe(12)  # 16 URL-safe characters, 96 random bits


class Recognition(db.Model):
    id = db.Column(db.String(32), primary_key=True, default=new_public_id)
    stored_name = db.Column(db.String(64), nullable=False)  # random file name under UPLOAD_DIR
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    image_format = db.Column(db.String(16), nullable=False)
    status = db.Column(db.String(16), nullable=False, default="queued", index=True)
    label = db.Column(db.String(80), nullable=True)  # the model's class key; None: not a known landmark
    landmark_id = db.Column(db.Integer, db.ForeignKey("landmark.id", ondelete="SET NULL"), nullable=True)
    confidence = db.Column(db.Float, nullable=True)
    top5 = db.Column(db.JSON, nullable=True)  # [[class_key, probability], ...], best first
    model_version = db.Column(db.String(80), nullable=True)
    error = db.Column(db.Text, nullable=True)
    decode_ms = db.Column(db.Float, nullable=True)
    inference_ms = db.Column(db.Float, nullable=True)
    attempts = db.Column(db.Integer, nullable=False, default=0)  # times a worker started it
    requeues = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # times the sweeper re-sent it
    delete_token_hash = db.Column(db.String(64), nullable=True)  # sha256 of the uploader's capability token
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    enqueued_at = db.Column(db.DateTime(timezone=True), nullable=True)  # last time a message was sent
    started_at = db.Column(db.DateTime(timezone=True), nullable=True)
    finished_at = db.Column(db.DateTime(timezone=True), nullable=True)

    landmark = db.relationship(Landmark, lazy="joined")
    delete_token = None  # not stored: the uploader's token (str), set by accept_upload only

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def claim(recognition_id: str) -> bool:
    """Mark a queued (or stuck running) recognition ``running``; False if it is finished or gone."""
    claimed = db.session.execute(
        db.update(Recognition)
        .where(Recognition.id == recognition_id, Recognition.status.not_in(FINISHED))
        .values(status="running", started_at=utcnow(), attempts=Recognition.attempts + 1)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def finish_once(recognition_id: str, status: str, **values) -> bool:
    """Write a recognition's outcome unless one is already written: a result is written once.

    A conditional UPDATE, so two workers that ran the same recognition (a redelivered message,
    the sweeper's re-enqueue) cannot both write; the later one changes nothing.
    """
    written = db.session.execute(
        db.update(Recognition)
        .where(Recognition.id == recognition_id, Recognition.status.not_in(FINISHED))
        .values(status=status, finished_at=utcnow(), **values)
    ).rowcount
    db.session.commit()
    return bool(written)
