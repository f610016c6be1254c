"""Reference photos: photos known to show a landmark, which enrol it for few-shot recognition.

Editors upload them (page and API); accepting a visitor's correction copies the visitor's photo
here (kept past the uploads' retention period). Each new photo is sent to the inference queue,
where a worker stores the active model's embedding of it (``worker.tasks.embed_references``).
"""
from __future__ import annotations

import hashlib
import secrets

from flask import current_app
from werkzeug.datastructures import FileStorage

from config import EMBED_TASK
from ml import images
from webapp.extensions import db
from webapp.models import Landmark, Recognition, ReferencePhoto, User
from webapp.storage import (
    SHOWN_SIDE,
    decode_upload,
    original_path,
    reference_dir,
    reference_display_path,
    reference_path,
)
from webapp.uploads import UploadError, read_image

# Photos that may represent a landmark on public pages: an editor's, not a visitor's correction (the visitor
# agreed to its use for improving recognition, not to its publication).
COVER_SOURCES = ("editor",)


def add_reference_photos(landmark: Landmark, files: list[FileStorage], user: User | None) -> list[ReferencePhoto]:
    """Validate every file first (``UploadError`` names the first bad one: nothing is stored then),
    then store them all, commit, and enqueue their embeddings."""
    decoded = []
    for file in files:
        try:
            decoded.append(read_image(file))
        except UploadError as err:
            raise UploadError(err.status, f"{(file.filename or '?')[:120]}: {err.message}") from err
    photos = [_store(landmark, data, image, "editor", user) for data, image in decoded]
    db.session.commit()
    enqueue_embeddings(photos)
    return photos


def add_reference_from_recognition(rec: Recognition, landmark: Landmark, user: User | None) -> ReferencePhoto:
    """Copy a visitor's photo (an accepted correction) into the reference photos of ``landmark``."""
    data = original_path(rec).read_bytes()
    image = decode_upload(data)
    photo = _store(landmark, data, image, "correction", user, recognition_id=rec.id)
    db.session.commit()
    enqueue_embeddings([photo])
    return photo


def remove_reference_photo(photo: ReferencePhoto) -> None:
    reference_path(photo).unlink(missing_ok=True)
    reference_display_path(photo).unlink(missing_ok=True)
    db.session.delete(photo)
    db.session.commit()


def cover_photos(landmarks: list[Landmark]) -> dict[int, ReferencePhoto]:
    """Landmark id → the photo that represents it: the one an editor chose, else its first editor-added
    reference photo; landmarks without one are left out."""
    if not landmarks:
        return {}
    chosen = {lm.cover_photo_id for lm in landmarks if lm.cover_photo_id}
    photos = db.session.scalars(
        db.select(ReferencePhoto)
        .where(ReferencePhoto.landmark_id.in_([lm.id for lm in landmarks]),
               db.or_(ReferencePhoto.id.in_(chosen), ReferencePhoto.source.in_(COVER_SOURCES)))
        .order_by(ReferencePhoto.id)).all()
    covers = {photo.landmark_id: photo for photo in photos if photo.id in chosen}
    for photo in photos:
        covers.setdefault(photo.landmark_id, photo)
    return covers


def set_cover_photo(landmark: Landmark, photo: ReferencePhoto) -> None:
    """Make ``photo`` (one of the landmark's, added by an editor) the landmark's representative photo."""
    if photo.landmark_id != landmark.id or photo.source not in COVER_SOURCES:
        raise ValueError("only an editor's reference photo of this landmark can represent it")
    landmark.cover_photo_id = photo.id
    db.session.commit()


def enqueue_embeddings(photos: list[ReferencePhoto]) -> None:
    """Ask a worker to embed these photos; a photo left without one is picked up again on activation."""
    if photos:
        current_app.extensions["celery"].send_task(EMBED_TASK, args=[[p.id for p in photos]])


def _store(landmark: Landmark, data: bytes, image: images.DecodedImage, source: str, user: User | None,
           recognition_id: str | None = None) -> ReferencePhoto:
    photo = ReferencePhoto(landmark_id=landmark.id, stored_name=secrets.token_hex(16), source=source,
                           sha256=hashlib.sha256(data).hexdigest(), image_format=image.format,
                           added_by_id=user.id if user else None, recognition_id=recognition_id)
    folder = reference_dir()
    (folder / f"{photo.stored_name}.orig").write_bytes(data)
    (folder / f"{photo.stored_name}.jpg").write_bytes(images.reencode_jpeg(image.image, max_side=SHOWN_SIDE))
    db.session.add(photo)
    return photo
