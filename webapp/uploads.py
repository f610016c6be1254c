"""Accepting an upload: the one place where a visitor's file is checked, stored and queued.

Pages and the JSON API both call ``accept_upload``; it raises ``UploadError`` with an HTTP
status and a message fit to show the visitor.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from config import RECOGNIZE_ALBUM_TASK, RECOGNIZE_TASK
from ml import images
from webapp import logs
from webapp.errors import ServiceError
from webapp.extensions import db
from webapp.models import Recognition, token_digest, utcnow
from webapp.storage import (
    SHOWN_SIDE,
    decode_upload,
    display_path,
    large_decode_slot,
    original_path,
    upload_dir,
    visitor_reason,
)


class UploadError(ServiceError):
    """An uploaded photo refused: its status and a reason fit to show the visitor."""


def accept_upload(file: FileStorage | None, album_id: str | None = None) -> Recognition:
    """Validate the file by decoding it, store it, create the row and enqueue recognition.

    A photo of an album (``album_id``, webapp/albums.py) has no delete token of its own: the album's deletes it."""
    data, decoded = read_image(file)
    token = None if album_id else secrets.token_urlsafe(24)  # the uploader's capability to delete it (hash stored)
    rec = Recognition(
        album_id=album_id,
        stored_name=secrets.token_hex(16),  # random: nothing the visitor sent reaches the file system
        sha256=hashlib.sha256(data).hexdigest(),
        image_format=decoded.format,
        delete_token_hash=token_digest(token) if token else None,
        enqueued_at=utcnow(),
    )
    folder = upload_dir()
    (folder / f"{rec.stored_name}.orig").write_bytes(data)  # as sent: its EXIF is read, never shown
    (folder / f"{rec.stored_name}.jpg").write_bytes(images.reencode_jpeg(decoded.image, max_side=SHOWN_SIDE))
    try:
        db.session.add(rec)
        db.session.flush()
        db.session.expunge(rec)  # keeps the values just written: the answer needs no SELECT after the commit
        db.session.commit()
    except Exception:  # the database is down: nothing was accepted, keep nothing (→ 503)
        db.session.rollback()
        remove_files(rec)
        raise
    logs.bind_recognition(rec.id, "upload stored")  # this request's log lines carry the recognition id
    try:
        current_app.extensions["celery"].send_task(recognize_task(rec), args=[rec.id])
    except Exception:  # the broker is down even after kombu's retries: undo, so a 503 means "not accepted"
        try:
            discard(rec)
        except Exception:  # the database went too: the sweeper sends it later, still nothing lost
            current_app.logger.exception("could not withdraw recognition %s", rec.id)
        raise
    rec.delete_token = token
    return rec


def read_image(file: FileStorage | None) -> tuple[bytes, images.DecodedImage]:
    """The file's bytes and decoded image, or ``UploadError``: the one validation of every uploaded photo."""
    if file is None:
        raise UploadError(400, _("No photo was sent; choose an image file."))
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    data = file.stream.read(limit + 1)
    if not data:
        raise UploadError(400, _("The file is empty."))
    if len(data) > limit:
        raise UploadError(413, _("The file is larger than %(mb)s MB.", mb=current_app.config["MAX_UPLOAD_MB"]))
    try:
        decoded = decode_upload(data, slot=large_decode_slot)
    except images.DecoderBusy:
        raise UploadError(503, _("The server is busy with other large photos; please try again in a moment.")) from None
    except images.ImageTooLarge as err:  # a decompression bomb or a huge scan: the request is at fault
        raise UploadError(400, _("This file cannot be used: %(reason)s.", reason=visitor_reason(err))) from None
    except images.ImageError as err:
        raise UploadError(415, _("This file cannot be used: %(reason)s.", reason=visitor_reason(err))) from None
    return data, decoded


def recognize_task(rec: Recognition) -> str:
    """The task that recognises ``rec``: an album's photos wait on their own queue (docs/fairness.md)."""
    return RECOGNIZE_ALBUM_TASK if rec.album_id else RECOGNIZE_TASK


def token_matches(token: str | None, stored_hash: str | None) -> bool:
    if not (token and stored_hash):
        return False
    return hmac.compare_digest(token_digest(token), stored_hash)


def may_delete(rec: Recognition, token: str | None) -> bool:
    """The upload's own token, or for an album's photo the album's token."""
    return token_matches(token, rec.delete_token_hash) or bool(
        rec.album_id and rec.album and token_matches(token, rec.album.delete_token_hash))


def discard(rec: Recognition) -> None:
    """Delete a recognition: its files, then its row (the uploader's wish, or the retention period)."""
    remove_files(rec)
    try:
        db.session.delete(rec)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def remove_files(rec: Recognition) -> None:
    original_path(rec).unlink(missing_ok=True)
    display_path(rec).unlink(missing_ok=True)


