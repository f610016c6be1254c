"""Trip albums: many photos uploaded together, each one a Recognition made by the one upload path.

An album is created with its first photos and grows to at most ``ALBUM_MAX_PHOTOS``. Every photo goes
through ``accept_upload`` like a single one, so a refused file gets its own error (``Refused``) and does
not stop the others; when none is accepted no album is left behind. The album's delete token (only its
SHA-256 is stored) deletes the album, or one of its photos, and authorises adding photos.

An album's photos are recognised by ``worker.tasks.recognize_album`` on the ``inference-album`` queue,
which every inference worker consumes beside ``inference``: kombu takes from a worker's queues in turn,
so a visitor's single photo never waits behind a whole album (docs/fairness.md). They still fill the
worker's micro-batches together.

The trip: the landmarks of the album's sure answers, numbered in the order the photos were taken
(``Recognition.taken_at``, the camera's time read by the worker; photos without it after those with it,
in upload order).
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from flask import current_app, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func
from werkzeug.datastructures import FileStorage

from webapp.extensions import db
from webapp.models import FINISHED, STATUSES, Album, Landmark, Recognition, ReferencePhoto, token_digest
from webapp.references import remove_reference_photo
from webapp.serializers import _iso, landmark_json, landmark_url, recognition_json, status_url
from webapp.uploads import UploadError, accept_upload, remove_files, token_matches

log = logging.getLogger(__name__)
MAX_FILE_LABEL = 200  # characters of a refused file's name echoed back in its error
# the endpoints that take many photos in one request (ALBUM_MAX_REQUEST_MB instead of MAX_UPLOAD_MB)
MULTI_PHOTO_ENDPOINTS = ("pages.upload", "pages.create_album", "pages.add_album_photos", "api.create_album",
                         "api.add_album_images")


class AlbumGone(Exception):
    """The album was deleted while photos were being added to it."""


@dataclass
class Refused:
    """A file that was not accepted, with the reason shown to the visitor."""

    file: str  # the name the client gave it (only ever echoed back, escaped; never used as a path)
    error: str
    status: int  # the HTTP status it would have had alone

    def json(self) -> dict:
        return {"file": self.file, "error": self.error, "status": self.status}


@dataclass
class Stop:
    """A landmark of the trip: its number (in the order the photos were taken) and its photos."""

    number: int
    landmark: Landmark
    recognitions: list[Recognition] = field(default_factory=list)


# --- taking photos ----------------------------------------------------------------------------------

def photos_sent() -> list[FileStorage]:
    """The files of this request: the multipart field ``images`` (and ``image``, the single-photo name),
    without the empty parts a browser sends for a file input left empty."""
    files = request.files.getlist("images") + request.files.getlist("image")
    return [file for file in files if file.filename]


def widen_request_limit() -> None:
    """Before any view or CSRF check reads the body: a multi-photo post may be ``ALBUM_MAX_REQUEST_MB``
    (each photo is still held to ``MAX_UPLOAD_MB`` by ``read_image``)."""
    if request.endpoint in MULTI_PHOTO_ENDPOINTS and request.method == "POST":
        request.max_content_length = current_app.config["ALBUM_MAX_REQUEST_MB"] * 1024 * 1024


def create_album(files: list[FileStorage], budget: int | None = None
                 ) -> tuple[Album | None, list[Recognition], list[Refused]]:
    """A new album with the files that are accepted (``budget``: at most that many are tried, the rest
    refused as over the rate limit). None, and no album, when every file is refused. The album's
    ``delete_token`` is set on the returned object only."""
    token = secrets.token_urlsafe(24)
    album = Album(delete_token_hash=token_digest(token))
    db.session.add(album)
    db.session.commit()
    album_id = album.id
    try:
        accepted, refused = add_photos(album_id, files, budget)
    except Exception:  # the database or the broker went away: keep no empty album, let the 503 through
        remove_if_empty(album_id)
        raise
    if not accepted:
        remove_if_empty(album_id)
        return None, [], refused
    stored = db.session.get(Album, album_id)
    assert stored is not None  # made above, and it holds the accepted photos
    stored.delete_token = token
    return stored, accepted, refused


def add_photos(album_id: str, files: list[FileStorage], budget: int | None = None
               ) -> tuple[list[Recognition], list[Refused]]:
    """Add each file to the album through ``accept_upload``: (accepted, refused), in the order sent.

    Raises ``AlbumGone`` if the album is deleted meanwhile. The album's row is locked while each photo
    is added (PostgreSQL), so concurrent posts cannot take it past ``ALBUM_MAX_PHOTOS``."""
    limit = current_app.config["ALBUM_MAX_PHOTOS"]
    accepted: list[Recognition] = []
    refused: list[Refused] = []
    for index, file in enumerate(files):
        name = file_label(file, index)
        if budget is not None and index >= budget:
            refused.append(Refused(name, over_photo_budget(), 429))
            continue
        if photo_count(album_id, lock=True) >= limit:
            db.session.rollback()  # ends the transaction: the album's row is free again
            refused.append(Refused(name, _("An album holds at most %(count)d photos.", count=limit), 409))
            continue
        try:
            accepted.append(accept_upload(file, album_id=album_id))  # commits, which releases the lock
        except UploadError as err:
            db.session.rollback()
            refused.append(Refused(name, err.message, err.status))
    return accepted, refused


def photo_count(album_id: str, lock: bool = False) -> int:
    query = db.select(Album.id).where(Album.id == album_id)
    if db.session.scalar(query.with_for_update() if lock else query) is None:
        db.session.rollback()
        raise AlbumGone(album_id)
    return db.session.scalar(db.select(func.count()).select_from(Recognition).where(Recognition.album_id == album_id))


def file_label(file: FileStorage, index: int) -> str:
    name = (file.filename or "").replace("\\", "/").strip()
    return name[:MAX_FILE_LABEL] or f"#{index + 1}"


def over_photo_budget() -> str:
    return _("Too many photos from your address for now; please wait a few minutes and try again.")


def refused_status(refused: list[Refused]) -> int:
    """The status of a request whose every file was refused: theirs when they agree, else 400."""
    statuses = {r.status for r in refused}
    return statuses.pop() if len(statuses) == 1 else 400


# --- the album's token ------------------------------------------------------------------------------

def may_manage(album: Album, token: str | None) -> bool:
    """Whoever holds the album's token may add photos to it and delete it (or one of its photos)."""
    return token_matches(token, album.delete_token_hash)


def discard_album(album: Album) -> None:
    """Delete an album: every file of every photo, then the rows (its photos', then its own)."""
    album_id = album.id
    copies = db.session.scalars(db.select(ReferencePhoto)
                                .join(Recognition, ReferencePhoto.recognition_id == Recognition.id)
                                .where(Recognition.album_id == album_id)).all()
    for copy in copies:  # an accepted correction's copy goes with the photo, as for a single one (feedback.py)
        remove_reference_photo(copy)
    try:
        db.session.scalar(db.select(Album.id).where(Album.id == album_id).with_for_update())  # no photo joins now
        for rec in db.session.scalars(db.select(Recognition).where(Recognition.album_id == album_id)):
            remove_files(rec)
        # statements, not the ORM: it would keep loaded photos by clearing their album_id instead
        db.session.execute(db.delete(Recognition).where(Recognition.album_id == album_id))
        db.session.execute(db.delete(Album).where(Album.id == album_id))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def remove_if_empty(album_id: str) -> None:
    """Drop an album that got no photo (every file refused, or the service failed on the first one)."""
    try:
        db.session.rollback()
        has_photos = db.select(Recognition.id).where(Recognition.album_id == Album.id).exists()
        db.session.execute(db.delete(Album).where(Album.id == album_id, ~has_photos))
        db.session.commit()
    except Exception:  # the database is down: the purge removes empty albums later
        db.session.rollback()
        log.warning("could not remove empty album %s", album_id, exc_info=True)


# --- what an album shows ----------------------------------------------------------------------------

def recognitions(album: Album) -> list[Recognition]:
    """The album's photos in upload order."""
    return cast("list[Recognition]", db.session.scalars(  # all() returns a list
        db.select(Recognition).where(Recognition.album_id == album.id)
        .order_by(Recognition.created_at, Recognition.id)).all())


def taken_order(recs: list[Recognition]) -> list[Recognition]:
    """Photos in the order they were taken: by camera time, then those without one in upload order."""
    upload_rank = {rec.id: i for i, rec in enumerate(recs)}
    return sorted(recs, key=lambda r: (r.taken_at is None, r.taken_at or datetime.min, upload_rank[r.id]))


def sure_landmark(rec: Recognition) -> Landmark | None:
    """The catalog landmark of a finished sure answer (serializers.answer's rule, without its queries)."""
    if rec.status != "done" or rec.landmark is None:
        return None
    return rec.landmark if (rec.tier or ("sure" if rec.label else "unknown")) == "sure" else None  # type: ignore[return-value]


def trip(recs: list[Recognition]) -> list[Stop]:
    """The landmarks the photos show (sure answers only), numbered by their first photo in taken order."""
    stops: dict[int, Stop] = {}
    for rec in taken_order(recs):
        landmark = sure_landmark(rec)
        if landmark is not None:
            stops.setdefault(landmark.id, Stop(len(stops) + 1, landmark)).recognitions.append(rec)
    return list(stops.values())


def provinces(stops: list[Stop]) -> list[str]:
    """The provinces visited, in the order first reached."""
    return list(dict.fromkeys(stop.landmark.province for stop in stops if stop.landmark.province))


def counts(recs: list[Recognition]) -> dict:
    by_status = dict.fromkeys(STATUSES, 0)
    for rec in recs:
        by_status[rec.status] = by_status.get(rec.status, 0) + 1
    finished = sum(by_status[status] for status in FINISHED)
    return {"total": len(recs), **by_status, "finished": finished}


def album_url(album: Album) -> str:
    return url_for("api.get_album", album_id=album.id)


def album_json(album: Album) -> dict:
    """The album: its photos (upload order) with their results as ``recognition_json`` gives them, counts by
    status, and the landmarks visited (numbered in the order the photos were taken) with their provinces."""
    recs = recognitions(album)
    stops = trip(recs)
    found = counts(recs)
    return {
        "id": album.id,
        "status_url": album_url(album),
        "url": url_for("pages.album", album_id=album.id),
        "created_at": _iso(album.created_at),
        "counts": found,
        "finished": found["finished"] == found["total"],
        "recognitions": [recognition_entry(rec) for rec in recs],
        "visited": [stop_json(stop) for stop in stops],
        "provinces": provinces(stops),
    }


def recognition_entry(rec: Recognition) -> dict:
    return {**recognition_json(rec), "status_url": status_url(rec),
            "result_url": url_for("pages.result", rec_id=rec.id), "photo_url": url_for("pages.photo", rec_id=rec.id)}


def stop_json(stop: Stop) -> dict:
    return {"number": stop.number, "landmark": landmark_json(stop.landmark), "url": landmark_url(stop.landmark),
            "recognitions": [{"id": rec.id, "result_url": url_for("pages.result", rec_id=rec.id),
                              "photo_url": url_for("pages.photo", rec_id=rec.id)} for rec in stop.recognitions]}
