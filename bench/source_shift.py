"""Has the model learnt the landmark or the web source? Test photos shown as the *other* source shows them.

    python bench/source_shift.py --bundle ml/shipped/landmarks-vn50 \
        --data ../shared/data/landmarks-vn20 ../shared/data/landmarks-vn30

The two sources differ in how they look: ``landmarks-vn20`` are small thumbnails (≈ 275 px), the
second source's photos are large (≤ 1024 px) and some carry watermarks or text banners. No landmark
has photos from both, so each test photo is re-rendered the way the other source would show it:

  thumbnail   a second-source photo as a first-source thumbnail: longer side 275 px, JPEG quality 70
  banner      a first-source photo with a text banner across the bottom (a dark strip with white text)
  watermark   a first-source photo with a translucent text watermark in a corner

A model that learnt "large and sharp → one of the 30 new landmarks" or "a banner → a new landmark"
loses accuracy on these. The banner and watermark differ from the training augmentation's
(solid strips with striped "text"); the thumbnail is what the first source did to its photos.
Results go to docs/source-shift.md.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.data import scan, source_of, split, subset  # noqa: E402
from ml.images import load_rgb  # noqa: E402
from ml.predictor import Predictor  # noqa: E402
from ml.tiers import tiers_of  # noqa: E402


def thumbnail(image: Image.Image) -> Image.Image:
    small = image.copy()
    small.thumbnail((275, 275), Image.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def banner(image: Image.Image) -> Image.Image:
    out = image.copy()
    w, h = out.size
    strip = max(12, int(0.13 * h))
    draw = ImageDraw.Draw(out, "RGBA")
    draw.rectangle([0, h - strip, w, h], fill=(20, 30, 60, 230))
    font = ImageFont.load_default(size=max(8, int(strip * 0.55)))
    draw.text((int(0.04 * w), h - strip + int(strip * 0.2)), "DU LICH VIET NAM  -  dulich.example.vn", font=font,
              fill=(255, 255, 255, 255))
    return out


def watermark(image: Image.Image) -> Image.Image:
    out = image.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out, "RGBA")
    font = ImageFont.load_default(size=max(10, int(0.09 * h)))
    draw.text((int(0.05 * w), int(0.05 * h)), "© travelphoto", font=font, fill=(255, 255, 255, 140))
    return out


SHIFTS = {"thumbnail": thumbnail, "banner": banner, "watermark": watermark}


def accuracy(predictor: Predictor, images: list[Image.Image], labels: np.ndarray) -> dict:
    probs = []
    for i in range(0, len(images), 64):
        p, _ = predictor.predict_arrays(predictor.preprocess(images[i: i + 64]), exact=True)
        probs.append(p[:, : len(predictor.labels)])
    probs = np.concatenate(probs)
    top5 = np.argsort(-probs, 1)[:, :5]
    correct = probs.argmax(1) == labels
    sure = tiers_of(probs, predictor.tiers) == 0
    return {"top1": float(correct.mean()),
            "top5": float(np.mean([lab in r for lab, r in zip(labels, top5, strict=False)])),
            "sure and correct": float(np.mean(sure & correct))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle")
    ap.add_argument("--data", required=True, nargs="+", action="extend")
    ap.add_argument("--doc", default="docs/source-shift.md")
    args = ap.parse_args()

    predictor = Predictor(args.bundle, runtime="litert", fast_path=False)
    seed = predictor.info.extra.get("split", {}).get("seed", 1337)
    test = split(subset(scan(args.data), predictor.labels), seed=seed).test
    rows = []
    for source in sorted({source_of(s.path) for s in test}):
        photos = [s for s in test if source_of(s.path) == source]
        labels = np.array([s.label for s in photos])
        images = [load_rgb(s.path) for s in photos]
        base = accuracy(predictor, images, labels)
        rows.append((source, "as published", len(photos), base))
        large = np.median([max(im.size) for im in images]) > 400
        for name in (["thumbnail"] if large else ["banner", "watermark"]):
            rows.append((source, name, len(photos), accuracy(predictor, [SHIFTS[name](im) for im in images], labels)))
    lines = ["# Source shift: test photos shown as the other web source shows them", "",
             f"Measured by `python bench/source_shift.py` on bundle `{predictor.version}` (LiteRT float), on its "
             "group-aware test split. See the script's docstring for the transforms.", "",
             "| test photos | shown as | photos | top-1 | top-5 | sure and correct |", "|---|---|---|---|---|---|"]
    lines += [f"| {src} | {name} | {n} | {m['top1']:.1%} | {m['top5']:.1%} | {m['sure and correct']:.1%} |"
              for src, name, n, m in rows]
    print("\n".join(lines))
    doc = Path(args.doc)
    tail = doc.read_text().split("<!-- notes -->", 1)[1] if doc.exists() and "<!-- notes -->" in doc.read_text() else ""
    doc.write_text("\n".join(lines) + "\n\n<!-- notes -->" + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
