"""Where uploads and reference photos are stored, and how a stored or uploaded photo is decoded.

Shared by the web (which stores and validates) and the workers (which decode for the model): one home for
the file names under ``UPLOAD_DIR`` and ``REFERENCE_DIR`` and for the decoding rules (formats, pixel and
memory limits, the reasons shown to visitors). Each photo is kept twice: the bytes as sent (``.orig``, with
their EXIF) and a metadata-free copy of at most ``SHOWN_SIDE`` pixels (``.jpg``), shown back and fed to
the model.
"""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from pathlib import Path

from flask import current_app

from ml import images
from webapp.models import Recognition, ReferencePhoto

SHOWN_SIDE = 1280  # the longer side of the metadata-free copy shown back to visitors and editors


# --- decoding -----------------------------------------------------------------------------------

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


def visitor_reason(err: images.ImageError) -> str:
    """The decoder's reason without the decoder's details, which may quote bytes from the file.

    Pixel counts are ours to show; anything else in parentheses (a Pillow message) is dropped,
    so nothing the visitor sent is ever echoed back.
    """
    text = str(err)
    if isinstance(err, images.ImageTooLarge):
        return text
    return re.sub(r"\s*\(.*\)\s*$", "", text, flags=re.S)



# --- visitors' uploads ----------------------------------------------------------------------------

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


# --- reference photos -----------------------------------------------------------------------------

def reference_dir() -> Path:
    folder = Path(current_app.config["REFERENCE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def reference_path(photo: ReferencePhoto) -> Path:
    """The photo as uploaded: what the worker embeds."""
    return Path(current_app.config["REFERENCE_DIR"]) / f"{photo.stored_name}.orig"


def reference_display_path(photo: ReferencePhoto) -> Path:
    """A re-encoded JPEG (EXIF stripped, at most 1280 px) for editor pages."""
    return Path(current_app.config["REFERENCE_DIR"]) / f"{photo.stored_name}.jpg"
