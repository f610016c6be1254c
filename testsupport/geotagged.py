"""Photos with an EXIF GPS position and time, made in memory (JPEG, HEIC, WebP), for any test."""
from __future__ import annotations

import io
from datetime import datetime
from fractions import Fraction

from PIL import Image

import ml.images  # noqa: F401  (registers the HEIC plugin)

FORMATS = {"jpeg": "JPEG", "heic": "HEIF", "webp": "WEBP"}
GPS_IFD, EXIF_IFD, DATETIME_ORIGINAL = 0x8825, 0x8769, 36867


def dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    """Unsigned degrees as EXIF's degrees, minutes, seconds rationals."""
    seconds = Fraction(round(abs(value) * 3600 * 10_000), 10_000)  # to 0.1 ms of arc, as phones write it
    degrees, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return Fraction(degrees), Fraction(minutes), seconds


def gps_exif(lat: float | None, lon: float | None, taken_at: datetime | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make: an EXIF block even without GPS
    if lat is not None and lon is not None:
        exif[GPS_IFD] = {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
    if taken_at is not None:
        exif[EXIF_IFD] = {DATETIME_ORIGINAL: taken_at.strftime("%Y:%m:%d %H:%M:%S")}
    return exif


def geotagged_photo(fmt: str = "jpeg", lat: float | None = 21.0367, lon: float | None = 105.8347,
                    taken_at: datetime | None = datetime(2024, 5, 1, 10, 20, 30), *,
                    image: Image.Image | bytes | None = None, exif: Image.Exif | bytes | None = None) -> bytes:
    """``image`` (a PIL image or encoded bytes; else a plain 320×240 picture) encoded as ``fmt`` ("jpeg",
    "heic", "webp") with EXIF GPS ``lat``/``lon`` and DateTimeOriginal ``taken_at`` (``exif``: raw instead)."""
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image)).convert("RGB")
    image = image if image is not None else Image.new("RGB", (320, 240), (40, 130, 190))
    block = exif if exif is not None else gps_exif(lat, lon, taken_at)
    out = io.BytesIO()
    image.save(out, FORMATS[fmt], exif=block if isinstance(block, bytes) else block.tobytes(), quality=90)
    return out.getvalue()
