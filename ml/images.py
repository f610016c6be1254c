"""Image decoding: the one place where uploaded or stored bytes become RGB pixels.

Shared by training, serving and the web's upload validation, so it imports only
Pillow and numpy (never TensorFlow). Every failure is an ``ImageError`` with a
message fit to show a visitor.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF photos from phones, when the optional plugin is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - optional dependency
    pass

DEFAULT_MAX_PIXELS = 40_000_000  # ~ a 48 MP phone photo passes; bombs do not
DEFAULT_MAX_DECODE_MB = 256  # memory one decode may take at its peak (estimated from the header, see decode_cost)
# the decoder's peak bytes per pixel where it keeps several copies (measured: docs/security.md); else the mode's
DECODER_BYTES_PER_PIXEL = {"WEBP": 16}
MIN_SIDE = 8
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image

# Formats a visitor may upload; training data may be in anything Pillow reads.
UPLOAD_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "HEIF", "HEIC", "MPO"})


class ImageError(ValueError):
    """The input is not a usable image; ``str(err)`` is a clear reason."""


class ImageTooLarge(ImageError):
    """More pixels than allowed (including decompression bombs): a bad request, not a bad format."""


class DecoderBusy(ImageError):
    """Too many large images are being decoded at once (``decode``'s ``slot``): try again in a moment."""


@dataclass(frozen=True)
class PhotoInfo:
    """What the camera recorded in EXIF: where (WGS84 degrees) and when (its local time, naive)."""

    position: tuple[float, float] | None = None  # (lat, lon)
    taken_at: datetime | None = None


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    format: str  # what the bytes really are, e.g. "JPEG"
    original_size: tuple[int, int]
    info: PhotoInfo = field(default_factory=PhotoInfo)  # from the file's EXIF; never in the re-encoded copy


def decode(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: frozenset[str] | None = None,
    draft_size: int | None = None,
    max_decode_mb: int = DEFAULT_MAX_DECODE_MB,
    slot: Callable[[int], AbstractContextManager] | None = None,
) -> DecodedImage:
    """Decode bytes, a path or a PIL image into an RGB image, or raise ImageError.

    ``draft_size``: a JPEG is decoded at the smallest scale (1, 1/2, 1/4 or 1/8, libjpeg's DCT scaling)
    that keeps both sides at least this many pixels: several times faster for a phone photo that is
    only shown at 1280 pixels or fed to the model at 224. Other formats are reduced by an integer
    factor right after loading, to the same bound, so their memory is the decoder's buffer and no
    more. ``original_size`` stays the file's own.

    Memory is bounded by bytes, not pixels alone: an image whose decoding would take more than
    ``max_decode_mb`` (``decode_cost``) is refused as too large, and ``slot(cost)``, when given, is held
    while the pixels are decoded (the web's cap on concurrent large decodes).
    """
    if isinstance(source, Image.Image):
        return DecodedImage(_to_rgb(source), source.format or "RAW", source.size)
    data = _read_bytes(source)
    if not data:
        raise ImageError("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = (img.format or "").upper()
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"the image is too large ({width}×{height} pixels; the limit is {max_pixels:,} pixels)"
                )
            if allowed_formats is not None and fmt not in allowed_formats:
                raise ImageError(f"{fmt or 'this'} images are not accepted; use JPEG, PNG or WebP")
            if min(width, height) < MIN_SIDE:
                raise ImageError(f"the image is too small ({width}×{height} pixels)")
            img.seek(0)  # first frame of animations
            if draft_size:
                img.draft("RGB", (draft_size, draft_size))  # a no-op for formats other than JPEG
            cost = decode_cost(img)
            if cost > max_decode_mb * 2**20:
                raise ImageTooLarge(f"the image is too large to decode ({width}×{height} {fmt} pixels need about "
                                    f"{cost // 2**20} MB; the limit is {max_decode_mb} MB)")
            with slot(cost) if slot else nullcontext():
                img.load()
                info = photo_info(img)  # before anything makes a new image without the EXIF
                if draft_size:  # before any conversion or copy: a tiny file may hold 40 MP of flat colour
                    img = _shrink(img, draft_size)
                img = ImageOps.exif_transpose(img)
                rgb = _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"the image is too large (over {max_pixels:,} pixels)") from None
    except UnidentifiedImageError:
        raise ImageError("the file is not an image we can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated / corrupt data
        raise ImageError(f"the image data is damaged or incomplete ({_short(exc)})") from None
    except Exception as exc:  # Pillow plugins raise odd types on hostile input
        raise ImageError(f"the image could not be decoded ({type(exc).__name__})") from None
    return DecodedImage(rgb, fmt, (width, height), info)


def decode_cost(img: Image.Image) -> int:
    """Bytes the decoder of an opened (not yet loaded) image takes at its peak, estimated from its header:
    pixels (after a JPEG draft) × bytes per pixel (Pillow's storage, or the decoder's own copies)."""
    mode_bytes = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4
    per_pixel = DECODER_BYTES_PER_PIXEL.get((img.format or "").upper(), mode_bytes)
    return img.width * img.height * max(per_pixel, mode_bytes)


def load_rgb(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    return decode(source, max_pixels=max_pixels).image


def to_array(image: Image.Image, size: int, resize: str = "bilinear") -> np.ndarray:
    """Resize an RGB image to ``size``×``size`` (whole image, aspect not kept) as float32 0..255."""
    method = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
              "nearest": Image.Resampling.NEAREST}[resize]
    if image.size != (size, size):
        # reduce() first keeps big phone photos fast and alias-free.
        factor = min(image.size) // (2 * size)
        if factor >= 2:
            image = image.reduce(factor)
        image = image.resize((size, size), method)
    return np.asarray(image, dtype=np.float32)


def reencode_jpeg(image: Image.Image, max_side: int = 1600, quality: int = 88) -> bytes:
    """A metadata-free JPEG copy to show back to visitors: pixels only (no EXIF/GPS, comment, XMP or
    profile ever leaves the server; Pillow would copy ``info``'s comment and XMP into the file)."""
    copy = image.copy()
    copy.info = {}
    copy.thumbnail((max_side, max_side))
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL = 36867
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4


def read_info(source: ImageSource) -> PhotoInfo:
    """``photo_info`` of a file or bytes, from its header only (no pixels are decoded); nothing when the
    file is gone or unreadable."""
    if isinstance(source, Image.Image):
        return photo_info(source)
    try:
        opened = source if isinstance(source, (str, os.PathLike)) else io.BytesIO(_read_bytes(source))
        with Image.open(opened) as img:
            return photo_info(img)
    except Exception:
        return PhotoInfo()


def photo_info(img: Image.Image) -> PhotoInfo:
    """The GPS position and the time taken from an opened image's EXIF (JPEG, HEIC, WebP…); whatever
    is missing or malformed is None: EXIF is written by any app and never trusted, never an error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of corrupt EXIF: here that simply means no information
            exif = img.getexif()
    except Exception:  # a broken EXIF block: the photo itself may still be fine
        return PhotoInfo()
    return PhotoInfo(_gps_position(exif), _taken_at(exif))


def _gps_position(exif: Image.Exif) -> tuple[float, float] | None:
    try:
        gps = exif.get_ifd(_GPS_IFD)
        lat = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "N", "S", 90)
        lon = _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), "E", "W", 180)
    except Exception:
        return None
    if lat is None or lon is None or (lat == 0 and lon == 0):  # 0, 0: a GPS that had no fix
        return None
    return lat, lon


def _degrees(dms, ref, positive: str, negative: str, limit: float) -> float | None:
    """Degrees, minutes, seconds (rationals) and a hemisphere letter → signed degrees, or None."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    ref = ref.strip("\x00 ").upper() if isinstance(ref, str) else None
    if ref not in (positive, negative) or not isinstance(dms, tuple) or not 1 <= len(dms) <= 3:
        return None
    parts = [float(v) for v in dms]
    if not all(math.isfinite(v) and v >= 0 for v in parts) or any(v > 60 for v in parts[1:]):
        return None
    value = sum(v / 60**i for i, v in enumerate(parts))
    if value > limit:
        return None
    return round(-value if ref == negative else value, 7)


def _taken_at(exif: Image.Exif) -> datetime | None:
    try:
        text: Any = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)  # whatever the app wrote
        if isinstance(text, bytes):
            text = text.decode("ascii")
        return datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except Exception:  # missing, "0000:00:00 00:00:00", or anything else
        return None


def _read_bytes(source: ImageSource) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        with open(source, "rb") as fh:  # type: ignore[arg-type]  # an Image.Image raises TypeError (read_info)
            return fh.read()
    except OSError as exc:
        raise ImageError(f"the file could not be read ({exc.strerror or exc})") from None


def _shrink(img: Image.Image, side: int) -> Image.Image:
    """``img`` reduced by the largest integer factor that keeps both sides at least ``side`` pixels."""
    factor = min(img.size) // side
    if factor < 2:
        return img
    if img.mode in ("RGB", "RGBA", "L", "LA", "PA", "I", "F", "CMYK", "YCbCr"):
        return img.reduce(factor)
    size = (-(-img.width // factor), -(-img.height // factor))
    # palettes cannot be averaged
    resample = Image.Resampling.NEAREST if img.mode in ("P", "1") else Image.Resampling.BOX
    return img.resize(size, resample)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # scaled to 8 bits by Pillow's integer point(), no arrays
        top = cast(float, img.getextrema()[1]) or 1  # one band: (min, max)
        img = img.point(lambda v: v * (255 / top), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."
