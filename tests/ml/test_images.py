"""Decoding: every format and mode becomes RGB; every bad input is one clear ImageError."""
import io

import numpy as np
import pytest
from PIL import Image

from ml.images import UPLOAD_FORMATS, ImageError, decode, reencode_jpeg, to_array
from ml_samples import encode, photo, scene


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
    assert decode(png, draft_size=448).image.size == (2400, 1800)  # JPEG only
    with pytest.raises(ImageError, match="damaged or incomplete"):
        decode(data[: len(data) // 2], draft_size=448)  # still fully checked
