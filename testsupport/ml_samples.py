"""Generated images for the ML tests (no ../shared needed)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LANDMARKS = SHARED / "data" / "landmarks-vn20"
DATASETS = [LANDMARKS, SHARED / "data" / "landmarks-vn30"]  # what the shipped model is trained on
OUTLIERS = SHARED / "data" / "landmarks-elsewhere"
NEGATIVES = SHARED / "data" / "negatives"


def photo(seed: int = 0, size=(64, 48), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB").convert(mode)


def encode(img: Image.Image, fmt="JPEG", **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def pattern(kind: int, seed: int, size: int = 48) -> Image.Image:
    """Classes that a tiny net can tell apart: stripes of different orientation and colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    wave = np.sin((x if kind == 0 else y) * (0.5 + 0.1 * rng.random()) + rng.random() * 6)
    arr = np.zeros((size, size, 3), np.float32)
    arr[..., kind % 3] = 127 + 120 * wave
    arr += rng.normal(0, 12, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))




def scene(seed: int, size: int = 128) -> Image.Image:
    """A smooth photo-like picture (big shapes on a gradient), stable under resizing and JPEG."""
    from PIL import ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, size)[:, None, None]
    base = (rng.integers(0, 255, 3) * (1 - y) + rng.integers(0, 255, 3) * y) * np.ones((size, size, 3))
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 6, size // 2, 2)
        draw.ellipse([x0, y0, x0 + w, y0 + h], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img.filter(ImageFilter.GaussianBlur(2))
