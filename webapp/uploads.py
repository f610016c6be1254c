"""Accepting an upload: the one place where a visitor's file is checked, stored and queued.

Pages and the JSON API both call ``accept_upload``; it raises ``UploadError`` with an HTTP
status and a message fit to show the visitor.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from config import RECOGNIZE_ALBUM_TASK, RECOGNIZE_TASK
from ml import images
from webapp import logs
from webapp.errors import ServiceError
from webapp.extensions import db
from webapp.models import Recognition, token_digest, utcnow

SHOWN_SIDE = 1280  # the longer side of the metadata-free copy shown back to visitors and editors


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


def decode_upload(source: images.ImageSource, draft_size: int | None = SHOWN_SIDE, slot=None) -> images.DecodedImage:
    """Decode an uploaded photo (bytes or a stored file) under the upload rules: formats, pixel and memory
    limits; no larger than ``draft_size`` needs (``images.decode``; the copy shown to visitors by default)."""
    return images.decode(source, max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                         max_decode_mb=current_app.config["MAX_DECODE_MB"],
                         allowed_formats=images.UPLOAD_FORMATS, draft_size=draft_size, slot=slot)


@contextmanager
def large_decode_slot(cost: int):
    """Held while a web process decodes an upload: at most ``LARGE_DECODES`` of those costing over
    ``LARGE_DECODE_MB`` at once per process (an editor's batch thus goes one large photo at a time too),
    so memory is bounded by LARGE_DECODES × MAX_DECODE_MB; a decode that waits ``DECODE_WAIT_S`` in vain
    raises ``images.DecoderBusy`` (503)."""
    config = current_app.config
    if cost <= config["LARGE_DECODE_MB"] * 2**20:
        yield
        return
    gate = current_app.extensions.get("large_decodes")
    if gate is None:  # one per app and process; setdefault: two first requests still share one
        gate = current_app.extensions.setdefault("large_decodes", threading.BoundedSemaphore(config["LARGE_DECODES"]))
    if not gate.acquire(timeout=config["DECODE_WAIT_S"]):
        raise images.DecoderBusy("too many large images are being decoded")
    try:
        yield
    finally:
        gate.release()


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


def visitor_reason(err: images.ImageError) -> str:
    """The decoder's reason without the decoder's details, which may quote bytes from the file.

    Pixel counts are ours to show; anything else in parentheses (a Pillow message) is dropped,
    so nothing the visitor sent is ever echoed back.
    """
    text = str(err)
    if isinstance(err, images.ImageTooLarge):
        return text
    return re.sub(r"\s*\(.*\)\s*$", "", text, flags=re.S)


def upload_dir() -> Path:
    folder = Path(current_app.config["UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def original_path(rec: Recognition) -> Path:
    return original_file(rec.stored_name)


def original_file(stored_name: str) -> Path:
    """The uploaded bytes as sent, with their metadata (EXIF); the model reads the shown copy."""
    return Path(current_app.config["UPLOAD_DIR"]) / f"{stored_name}.orig"


def display_path(rec: Recognition) -> Path:
    return shown_file(rec.stored_name)


def shown_file(stored_name: str) -> Path:
    """The copy shown to visitors: the upload already decoded, turned upright, at most SHOWN_SIDE pixels."""
    return Path(current_app.config["UPLOAD_DIR"]) / f"{stored_name}.jpg"


def model_input_file(stored_name: str) -> Path:
    """What the worker decodes for the model: the shown copy, a small JPEG that costs a few milliseconds to
    decode where a 12 MP phone photo (HEIC above all) costs tens to hundreds; the original if it has none."""
    shown = shown_file(stored_name)
    return shown if shown.exists() else original_file(stored_name)
