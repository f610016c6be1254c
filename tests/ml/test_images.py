"""Decoding: every format and mode becomes RGB; every bad input is one clear ImageError."""
import io
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from ml.images import DEFAULT_MAX_DECODE_MB, UPLOAD_FORMATS, ImageError, ImageTooLarge, decode, reencode_jpeg, to_array
from testsupport.ml_samples import encode, photo, scene


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_formats_decode_to_rgb(fmt):
    result = decode(encode(photo(), fmt))
    assert result.image.mode == "RGB" and result.image.size == (64, 48)
    assert result.format == fmt


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1"])
def test_modes_convert_to_rgb(mode):
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG" if mode != "1" else "BMP"
    assert decode(encode(photo(mode=mode), fmt)).image.mode == "RGB"


def test_sixteen_bit_png_is_scaled_not_clipped():
    arr = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    img = decode(encode(Image.fromarray(arr), "PNG")).image
    values = np.asarray(img)
    assert img.mode == "RGB" and values.max() == 255 and values.min() == 0


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    assert decode(encode(rgba, "PNG")).image.getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    img = photo(size=(60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    rotated = decode(encode(img, "JPEG", exif=exif)).image
    assert rotated.size == (20, 60)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    first = decode(out.getvalue()).image
    r, g, b = first.getpixel((5, 5))
    assert r > 200 and b < 50


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"hello, this is a text file renamed .jpg\n" * 5, "not an image"),
        (encode(photo(size=(400, 300)))[:600], "damaged or incomplete"),
        (encode(Image.new("RGB", (1, 1))), "too small"),
    ],
    ids=["zero-bytes", "text-as-jpg", "truncated-jpeg", "1x1"],
)
def test_bad_inputs_raise_clear_errors(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode(data)


def test_pixel_bomb_is_refused_before_decoding():
    # A PNG header claiming 30000×30000 pixels: refused from its size alone.
    bomb = encode(Image.new("1", (30000, 30000)), "PNG")
    with pytest.raises(ImageError, match="too large"):
        decode(bomb, max_pixels=40_000_000)


def test_upload_formats_refuse_others():
    with pytest.raises(ImageError, match="not accepted"):
        decode(encode(photo(), "BMP"), allowed_formats=UPLOAD_FORMATS)
    assert decode(encode(photo(), "WEBP"), allowed_formats=UPLOAD_FORMATS).format == "WEBP"


def test_missing_path_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="could not be read"):
        decode(tmp_path / "nope.jpg")


def test_to_array_resizes_and_reencode_strips_metadata():
    img = photo(size=(900, 500))
    arr = to_array(img, 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.float32
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    copy = Image.open(io.BytesIO(reencode_jpeg(decode(encode(img, "JPEG", exif=exif)).image)))
    assert not copy.getexif()


def jpeg_markers(data: bytes) -> set[int]:
    """The marker codes of a JPEG's segments before its image data."""
    markers, at = set(), 2
    while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] != 0xDA:
        markers.add(data[at + 1])
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return markers


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_shown_copy_keeps_no_comment_profile_or_any_other_metadata(fmt):
    icc = b"\0" * 128 + b"acsp" + b"\0" * 400  # any bytes: Pillow copies what it is given
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    extra = {"JPEG": {"comment": b"secret comment", "xmp": b"<x:xmpmeta>secret</x:xmpmeta>", "icc_profile": icc},
             "PNG": {"icc_profile": icc}, "WEBP": {"icc_profile": icc, "xmp": b"<x:xmpmeta>secret</x:xmpmeta>"}}[fmt]
    upload = encode(photo(size=(300, 200)), fmt, exif=exif, **extra)
    shown = reencode_jpeg(decode(upload).image)
    assert b"secret" not in shown and b"SecretCam" not in shown
    # tables, frame and the bare JFIF header only: no other APPn (EXIF, XMP, ICC), no COM
    assert jpeg_markers(shown) <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD} and shown[6:11] == b"JFIF\0"
    assert jpeg_markers(upload) - jpeg_markers(shown) or fmt != "JPEG"


def test_draft_size_decodes_a_big_jpeg_at_a_smaller_scale_with_the_same_model_input():
    big = scene(3, size=256).resize((2400, 1800), Image.BICUBIC)  # smooth content, like a photo
    data = encode(big, "JPEG", quality=92)
    full, small = decode(data), decode(data, draft_size=448)
    assert full.image.size == (2400, 1800) and small.original_size == (2400, 1800)
    assert small.image.size == (600, 450)  # 1/4: the smallest scale that keeps both sides ≥ 448
    difference = np.abs(to_array(full.image, 224) - to_array(small.image, 224))
    assert difference.mean() < 1.5  # of 255: the model sees the same picture
    assert decode(data, draft_size=1280).image.size == (2400, 1800)  # 1/2 would leave 900 < 1280
    png = encode(big, "PNG")
    reduced = decode(png, draft_size=448).image  # other formats: reduced by an integer factor after loading
    assert reduced.size == (600, 450)
    assert np.abs(to_array(decode(png).image, 224) - to_array(reduced, 224)).mean() < 0.5
    with pytest.raises(ImageError, match="damaged or incomplete"):
        decode(data[: len(data) // 2], draft_size=448)  # still fully checked


# --- memory: bounded by what is kept, not by what a tiny file expands to ------------------------------

PEAK_SCRIPT = """
import sys
from ml import images

def kib(field):  # this process's own figures (ru_maxrss would carry over the parent's peak across exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))

data = open(sys.argv[1], "rb").read()
before = kib("VmRSS")
decoded = images.decode(data, draft_size=1280)
assert decoded.image.mode == "RGB", decoded
print((kib("VmHWM") - before) / 1024, min(decoded.image.size))
"""


def peak_decode_mb(path) -> tuple[float, int]:
    """Peak memory (MB above the start) of decoding ``path`` for the shown copy, in a fresh process,
    and the decoded image's shorter side."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], cwd=root, capture_output=True, text=True,
                         check=True)
    peak, short_side = out.stdout.split()
    return float(peak), int(short_side)


def test_a_small_sixteen_bit_png_under_the_pixel_limit_costs_little_memory(tmp_path):
    path = tmp_path / "flat16.png"
    Image.fromarray(np.full((6000, 6200), 7, dtype=np.uint16)).save(path)  # 37 MP, ~90 KB
    assert path.stat().st_size < 200_000
    peak_mb, short_side = peak_decode_mb(path)
    assert peak_mb < 150  # the 16-bit pixels themselves (74 MB); no float64 copies (was ~650 MB)
    assert 1280 <= short_side < 2 * 1280  # reduced right after loading


def test_a_tiny_webp_whose_decoder_needs_too_much_memory_is_refused_before_decoding(tmp_path):
    data = encode(Image.new("RGB", (6400, 6100), (10, 200, 30)), "WEBP", lossless=True)  # 1.5 KB, 39 MP: ~600 MB
    assert len(data) < 10_000
    with pytest.raises(ImageTooLarge, match="too large to decode"):
        decode(data, draft_size=1280)
    path = tmp_path / "flat.webp"  # 12 MP: within the byte budget, decoded for about that budget
    Image.new("RGBA", (4000, 3000), (10, 200, 30, 128)).save(path, "WEBP", lossless=True)
    peak_mb, short_side = peak_decode_mb(path)
    assert peak_mb < DEFAULT_MAX_DECODE_MB
    assert 1280 <= short_side < 2 * 1280


def test_the_decode_slot_is_held_only_around_the_pixels_and_told_their_cost():
    held = []

    @contextmanager
    def slot(cost):
        held.append(cost)
        yield

    decode(encode(photo(size=(64, 48)), "PNG"), slot=slot)
    assert held == [64 * 48 * 4]
    with pytest.raises(ImageError):  # a refused file never takes a slot
        decode(b"not an image", slot=slot)
    assert len(held) == 1
