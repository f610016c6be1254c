"""Hostile files for fuzzing the upload path and the decoder (hypothesis strategies).

Shared by ``tests/webapp/test_fuzz.py`` (a few hundred cases per run) and ``bench/fuzz.py``
(the long run). Every strategy draws ``(kind, bytes)`` so failures say what they were.
"""
from __future__ import annotations

import io
import struct
import zlib
from functools import cache

from hypothesis import strategies as st

HOSTILE_NAMES = ['<script>alert("x")</script>.jpg', "../../etc/passwd", "photo.php.jpg", "\u202egpj.exe",
                 "a" * 300 + ".png", "", "image.svg"]


@cache
def seed_images() -> dict[str, bytes]:
    """Small valid images in every format we accept (and a few we do not), to mutate."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    seeds = {}
    for fmt, kwargs in {"JPEG": {"quality": 80}, "PNG": {}, "WEBP": {"quality": 60}, "GIF": {}, "BMP": {},
                        "TIFF": {}}.items():
        buf = io.BytesIO()
        photo.save(buf, fmt, **kwargs)
        seeds[fmt] = buf.getvalue()
    frames = [Image.new("RGB", (32, 32), (i * 60, 20, 200 - i * 50)) for i in range(4)]
    for fmt in ("PNG", "WEBP", "GIF"):  # animated
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
        seeds[f"animated {fmt}"] = buf.getvalue()
    buf = io.BytesIO()
    photo.convert("RGBA").save(buf, "PNG")
    seeds["RGBA PNG"] = buf.getvalue()
    buf = io.BytesIO()
    Image.new("I;16", (40, 40)).save(buf, "PNG")
    seeds["16-bit PNG"] = buf.getvalue()
    return seeds


def png_with_size(width: int, height: int, bit_depth: int = 1, color_type: int = 0) -> bytes:
    """A tiny PNG whose header claims any size (decompression bombs, zero or absurd dimensions)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_with_size(width: int, height: int) -> bytes:
    """The seed JPEG with its frame header (SOF0) rewritten to claim ``width``×``height``."""
    data = bytearray(seed_images()["JPEG"])
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


POLYGLOT_TAILS = [b"<?php system($_GET['c']); ?>", b"<html><script>alert(1)</script></html>",
                  b"PK\x03\x04" + b"\x00" * 26 + b"evil.sh", b"%PDF-1.4\n1 0 obj<<>>endobj\n"]


@st.composite
def mutated(draw):
    kind = draw(st.sampled_from(sorted(seed_images())))
    data = bytearray(seed_images()[kind])
    for _ in range(draw(st.integers(1, 12))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return f"mutated {kind}", bytes(data)


@st.composite
def truncated(draw):
    kind = draw(st.sampled_from(sorted(seed_images())))
    data = seed_images()[kind]
    return f"truncated {kind}", data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def polyglot(draw):
    kind = draw(st.sampled_from(["JPEG", "PNG", "WEBP", "GIF"]))
    tail = draw(st.sampled_from(POLYGLOT_TAILS))
    data = seed_images()[kind]
    if draw(st.booleans()):
        return f"{kind} + script", data + tail
    return f"script + {kind}", tail + data


@st.composite
def huge(draw):
    width = draw(st.one_of(st.integers(0, 16), st.integers(5_000, 70_000), st.integers(0, 2**31 - 1)))
    height = draw(st.one_of(st.integers(0, 16), st.integers(5_000, 70_000), st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):
        return f"PNG claiming {width}x{height}", png_with_size(width, height)
    return f"JPEG claiming {width}x{height}", jpeg_with_size(min(width, 65535), min(height, 65535))


def random_bytes():
    return st.binary(max_size=2048).map(lambda data: ("random bytes", data))


def seeds():
    return st.sampled_from(sorted(seed_images().items())).map(lambda item: (f"seed {item[0]}", item[1]))


def hostile_files():
    """Any of the above, in equal measure."""
    return st.one_of(random_bytes(), mutated(), truncated(), polyglot(), huge(), seeds(),
                     st.just(("empty", b"")))
