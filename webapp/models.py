"""Database models: the catalog, visitors' recognitions, editors, reference photos, model versions."""
from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import event

from webapp.extensions import db

STATUSES = ("queued", "running", "done", "failed")
FINISHED = ("done", "failed")
ROLES = ("editor", "admin")  # an admin may do everything an editor may
FEEDBACK = ("correct", "wrong")  # the visitor's answer to "Is this right?"
REVIEW_STATES = ("pending", "accepted", "dismissed")  # an editor's decision on a visitor's correction
MODEL_STATES = ("training", "ready", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def fold(text: str | None) -> str:
    """Lower-case text without Vietnamese diacritics, so "ha long" finds "Vịnh Hạ Long"."""
    text = (text or "").replace("đ", "d").replace("Đ", "D")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())


class Landmark(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
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
    # the photo that represents it on public pages (an editor's choice; unset: webapp.references.cover_photos)
    cover_photo_id = db.Column(db.Integer, db.ForeignKey("reference_photo.id", ondelete="SET NULL", use_alter=True),
                               nullable=True)
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


def token_digest(token: str) -> str:
    """How a secret token is stored (API tokens, delete tokens): its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_public_id() -> str:
    return secrets.token_urlsafe(12)  # 16 URL-safe characters, 96 random bits


class Album(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    """A visitor's trip: many photos uploaded together, each one a Recognition (webapp/albums.py)."""

    id = db.Column(db.String(32), primary_key=True, default=new_public_id)
    delete_token_hash = db.Column(db.String(64), nullable=True)  # sha256 of the uploader's capability token
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow, index=True)

    recognitions = db.relationship("Recognition", back_populates="album", passive_deletes=True,
                                   order_by="Recognition.created_at")
    delete_token = cast("str | None", None)  # not stored: the uploader's token, set when the album is created


POSITIONS = ("near", "far", "abroad")  # where a photo with GPS was taken, against the catalog (ml.location)


class Recognition(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    id = db.Column(db.String(32), primary_key=True, default=new_public_id)
    album_id = db.Column(db.String(32), db.ForeignKey("album.id", ondelete="CASCADE"), nullable=True, index=True)
    stored_name = db.Column(db.String(64), nullable=False)  # random file name under UPLOAD_DIR
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    image_format = db.Column(db.String(16), nullable=False)
    status = db.Column(db.String(16), nullable=False, default="queued", index=True)
    label = db.Column(db.String(80), nullable=True)  # the best candidate (sure or maybe); None: not a known landmark
    landmark_id = db.Column(db.Integer, db.ForeignKey("landmark.id", ondelete="SET NULL"), nullable=True)
    confidence = db.Column(db.Float, nullable=True)
    top5 = db.Column(db.JSON, nullable=True)  # [[class_key, probability], ...], best first
    tier = db.Column(db.String(16), nullable=True)  # "sure", "maybe", "unknown" (ml.tiers); None: not done, or older
    suggestions = db.Column(db.JSON, nullable=True)  # landmark keys: the candidates (maybe) or the closest (unknown)
    places = db.Column(db.JSON, nullable=True)  # [[landmark key, similarity], ...]: places that look like this
    model_version = db.Column(db.String(80), nullable=True)
    matched_by = db.Column(db.String(16), nullable=True)  # "classifier" or "reference" (few-shot enrolment)
    batch_size = db.Column(db.Integer, nullable=True)  # how many images the worker ran in the same batch
    worker = db.Column(db.String(200), nullable=True)  # the worker process that claimed it, then wrote the result
    error = db.Column(db.Text, nullable=True)
    decode_ms = db.Column(db.Float, nullable=True)
    inference_ms = db.Column(db.Float, nullable=True)
    # from the photo's EXIF, read by the worker; its coordinates are never stored (only in the uploaded file)
    taken_at = db.Column(db.DateTime(timezone=False), nullable=True)  # the camera's local time
    position = db.Column(db.String(16), nullable=True)  # POSITIONS; None: the photo has no GPS position
    distance_km = db.Column(db.Float, nullable=True)  # from where it was taken to the answered landmark
    attempts = db.Column(db.Integer, nullable=False, default=0)  # times a worker started it
    requeues = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # times the sweeper re-sent it
    delete_token_hash = db.Column(db.String(64), nullable=True)  # sha256 of the uploader's capability token
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    enqueued_at = db.Column(db.DateTime(timezone=True), nullable=True)  # last time a message was sent
    started_at = db.Column(db.DateTime(timezone=True), nullable=True)
    finished_at = db.Column(db.DateTime(timezone=True), nullable=True)
    # the visitor's feedback and an editor's review of it
    feedback = db.Column(db.String(16), nullable=True)  # FEEDBACK, or None: not given
    corrected_landmark_id = db.Column(db.Integer, db.ForeignKey("landmark.id", ondelete="SET NULL"), nullable=True)
    feedback_at = db.Column(db.DateTime(timezone=True), nullable=True)
    review_status = db.Column(db.String(16), nullable=True, index=True)  # REVIEW_STATES; "pending" when wrong
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    reviewed_at = db.Column(db.DateTime(timezone=True), nullable=True)

    landmark = db.relationship(Landmark, lazy="joined", foreign_keys=[landmark_id])
    album = db.relationship(Album, back_populates="recognitions")
    corrected_landmark = db.relationship(Landmark, foreign_keys=[corrected_landmark_id])
    delete_token = cast("str | None", None)  # not stored: the uploader's token, set by accept_upload only

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def claim(recognition_id: str) -> str | None:
    """Mark a queued (or stuck running) recognition ``running`` and return its stored file name;
    None if it is finished or gone."""
    return claim_many([recognition_id]).get(recognition_id)


def claim_many(ids: list[str], worker: str | None = None) -> dict[str, str]:
    """``claim`` for several recognitions in one statement and one commit (the worker's hot path):
    {id: stored file name} of those claimed. ``worker`` (its heartbeat name) is recorded, so the sweeper
    re-sends them soon should that worker die (webapp.maintenance.sweep)."""
    table = Recognition.__table__  # Core statements: a third cheaper than ORM-enabled ones
    rows = db.session.execute(
        table.update()
        .where(table.c.id.in_(ids), table.c.status.not_in(FINISHED))
        .values(status="running", started_at=utcnow(), attempts=table.c.attempts + 1, worker=worker)
        .returning(table.c.id, table.c.stored_name)
    ).all()
    db.session.commit()
    return dict(rows)


def finish_once(recognition_id: str, status: str, **values) -> bool:
    """Write a recognition's outcome unless one is already written: a result is written once.

    A conditional UPDATE, so two workers that ran the same recognition (a redelivered message,
    the sweeper's re-enqueue) cannot both write; the later one changes nothing.
    """
    return recognition_id in finish_many([(recognition_id, status, values)])


def finish_many(results: list[tuple[str, str, dict]]) -> set[str]:
    """``finish_once`` for several (id, status, values) in one transaction: the ids whose result was written.

    The unfinished rows are locked first (PostgreSQL), so the ids returned are exactly those written; the
    UPDATEs then go as one executemany per set of columns (one round trip with psycopg)."""
    table = Recognition.__table__
    ids = [rid for rid, _, _ in results]
    open_ids = set(db.session.execute(
        db.select(table.c.id).where(table.c.id.in_(ids), table.c.status.not_in(FINISHED)).with_for_update()
    ).scalars())
    by_columns: dict[tuple[str, ...], list[dict]]
    now, by_columns, written = utcnow(), {}, set()
    for rid, status, values in results:
        if rid in open_ids and rid not in written:  # the same id twice in one call: the first result wins
            written.add(rid)
            row = {"row_id": rid, "status": status, "finished_at": now, **values}
            by_columns.setdefault(tuple(row), []).append(row)
    unfinished = db.and_(*(table.c.status != s for s in FINISHED))  # no IN list: executemany cannot expand one
    for rows in by_columns.values():
        db.session.execute(table.update().where(table.c.id == db.bindparam("row_id"), unfinished), rows)
    db.session.commit()
    return written


class User(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    """An editor or admin; visitors have no account. Flask-Login's user (see webapp/auth.py)."""

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), unique=True, nullable=False)  # stored lower-case
    password_hash = db.Column(db.String(256), nullable=False)  # werkzeug scrypt
    role = db.Column(db.String(16), nullable=False)  # ROLES
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
    last_login_at = db.Column(db.DateTime(timezone=True), nullable=True)
    session_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # +1: saved sessions end

    # Flask-Login's interface
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:  # the session's user id carries the version: bumping it ends every saved session
        return f"{self.id}:{self.session_version}"

    def has_role(self, role: str) -> bool:
        return self.active and (self.role == role or self.role == "admin")


class ApiToken(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    """A bearer token for the JSON API; only its SHA-256 is stored. Revoked tokens are kept, marked."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    name = db.Column(db.String(120), nullable=False, default="")
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
    last_used_at = db.Column(db.DateTime(timezone=True), nullable=True)
    revoked_at = db.Column(db.DateTime(timezone=True), nullable=True)

    user = db.relationship(User, lazy="joined")


class ReferencePhoto(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    """A photo known to show a landmark: enrols it for nearest-neighbour recognition (few-shot).

    The worker stores the active model's embedding of it (float32 bytes); ``embedding_version``
    says which model computed it, so a model change triggers a recompute.
    """

    id = db.Column(db.Integer, primary_key=True)
    landmark_id = db.Column(db.Integer, db.ForeignKey("landmark.id", ondelete="CASCADE"), nullable=False, index=True)
    stored_name = db.Column(db.String(64), nullable=False)  # random file name under REFERENCE_DIR
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    image_format = db.Column(db.String(16), nullable=False)
    source = db.Column(db.String(16), nullable=False, default="editor")  # "editor" or "correction"
    recognition_id = db.Column(db.String(32), db.ForeignKey("recognition.id", ondelete="SET NULL"), nullable=True)
    added_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    embedding = db.Column(db.LargeBinary, nullable=True)
    embedding_version = db.Column(db.String(80), nullable=True, index=True)
    embedded_at = db.Column(db.DateTime(timezone=True), nullable=True)
    error = db.Column(db.Text, nullable=True)  # why no embedding could be computed
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)

    landmark = db.relationship(Landmark, foreign_keys=[landmark_id],
                               backref=db.backref("reference_photos", passive_deletes=True))


class ModelVersion(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    """A trained model bundle the workers can serve; exactly one is active (none: the shipped bundle)."""

    id = db.Column(db.Integer, primary_key=True)
    version = db.Column(db.String(80), unique=True, nullable=True)  # the bundle's content-hash id, once built
    bundle_dir = db.Column(db.String(500), nullable=True)
    arch = db.Column(db.String(40), nullable=False)
    status = db.Column(db.String(16), nullable=False, default="training")  # MODEL_STATES
    is_active = db.Column(db.Boolean, nullable=False, default=False, index=True)
    classes = db.Column(db.JSON, nullable=True)  # class keys the model was trained on
    metrics = db.Column(db.JSON, nullable=True)  # the bundle's metrics.json summary
    progress = db.Column(db.JSON, nullable=True)  # {"phase", "epoch", "epochs", "history": [...]} while training
    settings = db.Column(db.JSON, nullable=True)  # the training settings used
    error = db.Column(db.Text, nullable=True)
    started_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
    finished_at = db.Column(db.DateTime(timezone=True), nullable=True)
    activated_at = db.Column(db.DateTime(timezone=True), nullable=True)

    started_by = db.relationship(User)


class WorkerHeartbeat(db.Model):  # type: ignore[name-defined]  # db.Model is made at runtime
    """Each worker process's last sign of life: readiness, worker count and served model for /metrics."""

    name = db.Column(db.String(200), primary_key=True)  # hostname:pid
    queues = db.Column(db.String(200), nullable=False, default="")
    model_version = db.Column(db.String(80), nullable=True)
    runtime = db.Column(db.String(20), nullable=True)
    started_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
    seen_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    processed = db.Column(db.Integer, nullable=False, default=0)
