"""EXIF position and time read by ml.images.decode: JPEG, HEIC and WebP; anything malformed means none."""
from datetime import datetime
from fractions import Fraction

import pytest
from PIL import Image

from ml.images import decode, reencode_jpeg
from testsupport.geotagged import FORMATS, geotagged_photo, gps_exif


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_position_and_time_are_read(fmt):
    data = geotagged_photo(fmt, 21.0367, 105.8347, datetime(2024, 5, 1, 10, 20, 30))
    decoded = decode(data)
    assert decoded.format == FORMATS[fmt]
    lat, lon = decoded.info.position
    assert lat == pytest.approx(21.0367, abs=1e-6) and lon == pytest.approx(105.8347, abs=1e-6)
    assert decoded.info.taken_at == datetime(2024, 5, 1, 10, 20, 30)


def test_southern_and_western_hemispheres_are_negative():
    lat, lon = decode(geotagged_photo("jpeg", -33.8568, -70.6483)).info.position
    assert lat == pytest.approx(-33.8568, abs=1e-6) and lon == pytest.approx(-70.6483, abs=1e-6)


def test_no_exif_means_no_position_nor_time():
    info = decode(geotagged_photo("jpeg", None, None, None)).info
    assert info.position is None and info.taken_at is None


def broken(gps: dict) -> bytes:
    exif = gps_exif(None, None, None)
    exif[0x8825] = gps
    return geotagged_photo("jpeg", exif=exif)


@pytest.mark.parametrize("data", [
    broken({1: "N", 2: (Fraction(21), Fraction(2), Fraction(12)),
            4: (Fraction(105), Fraction(50), Fraction(5))}),  # no E/W
    broken({1: "X", 2: (Fraction(21), Fraction(0), Fraction(0)), 3: "E", 4: (Fraction(105), Fraction(0), Fraction(0))}),
    broken({1: "N", 2: (Fraction(95), Fraction(0), Fraction(0)), 3: "E", 4: (Fraction(105), Fraction(0), Fraction(0))}),
    broken({1: "N", 2: (Fraction(21), Fraction(75), Fraction(0)), 3: "E",
            4: (Fraction(105), Fraction(0), Fraction(0))}),
    broken({1: "N", 2: (Fraction(21),) * 4, 3: "E", 4: (Fraction(105), Fraction(0), Fraction(0))}),
    broken({1: "N", 2: (Fraction(0), Fraction(0), Fraction(0)), 3: "E",
            4: (Fraction(0), Fraction(0), Fraction(0))}),  # no fix
], ids=["no-ref", "bad-ref", "lat-over-90", "minutes-over-60", "four-parts", "null-island"])
def test_malformed_gps_gives_no_position(data):
    decoded = decode(data)  # the photo itself is fine
    assert decoded.info.position is None
    assert decoded.image.size == (320, 240)


def test_garbage_exif_block_and_time_never_raise():
    garbage = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + bytes(range(256)) * 4
    decoded = decode(geotagged_photo("jpeg", exif=garbage))
    assert decoded.info.position is None and decoded.info.taken_at is None
    exif = gps_exif(21.0, 105.8, None)
    exif[0x8769] = {36867: "0000:00:00 00:00:00"}
    info = decode(geotagged_photo("webp", exif=exif)).info
    assert info.taken_at is None and info.position is not None


def test_the_shown_copy_carries_no_exif():
    decoded = decode(geotagged_photo("jpeg"))
    shown = Image.open(__import__("io").BytesIO(reencode_jpeg(decoded.image)))
    assert not shown.getexif() and "exif" not in shown.info
