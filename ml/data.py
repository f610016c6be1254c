"""Folder-per-class datasets: scanning, decoding, duplicate grouping and group-aware splits.

Pure Python + Pillow + numpy; the tf.data side lives in ``ml.pipeline``.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ml.images import ImageError, decode

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
NEAR_DUPLICATE_BITS = 6  # dHash hamming distance at or below which two photos count as one


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    group: int = -1  # duplicate group id; a group never straddles splits


@dataclass
class Dataset:
    classes: list[str]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def report(self) -> dict:
        counts: dict[str, int] = defaultdict(int)
        for s in self.samples:
            counts[self.classes[s.label]] += 1
        return {
            "classes": len(self.classes),
            "images": len(self.samples),
            "groups": len({s.group for s in self.samples}),
            "per_class": dict(counts),
            "skipped": [{"file": p, "reason": r} for p, r in self.skipped],
        }


@dataclass
class Split:
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    seed: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "seed": self.seed,
            "classes": self.classes,
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "skipped": [{"file": p, "reason": r} for p, r in self.skipped],
        }

    def save(self, path: Path) -> None:
        data = self.summary()
        for part in ("train", "val", "test"):
            data[f"{part}_files"] = [[s.path, s.label, s.group] for s in getattr(self, part)]
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path) -> Split:
        data = json.loads(Path(path).read_text())
        parts = {p: [Sample(f, label, g) for f, label, g in data[f"{p}_files"]] for p in ("train", "val", "test")}
        skipped = [(s["file"], s["reason"]) for s in data.get("skipped", [])]
        return cls(data["classes"], parts["train"], parts["val"], parts["test"], data["seed"], skipped)


DataDirs = str | Path | Sequence[str | Path]  # one dataset folder, several, or a folder of them


def dataset_roots(data_dirs: DataDirs) -> list[Path]:
    """The folder-per-class datasets named by ``data_dirs``: one folder, several, or a folder of datasets
    (every sub-folder of which holds class folders rather than photos)."""
    dirs = [data_dirs] if isinstance(data_dirs, (str, Path)) else list(data_dirs)
    roots = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {d}")
        children = [c for c in sorted(d.iterdir()) if c.is_dir() and not c.name.startswith(".")]
        nested = children and all(_holds_only_folders(c) for c in children)
        roots += children if nested else [d]
    return roots


def _holds_only_folders(folder: Path) -> bool:
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    return bool(entries) and all(e.is_dir() for e in entries)


def scan(data_dirs: DataDirs, *, check_images: bool = True) -> Dataset:
    """List one or several folder-per-class datasets (``dataset_roots``); a class key found in several is
    one class. Unreadable files are skipped and reported, never fatal."""
    by_class: dict[str, list[Path]] = defaultdict(list)
    for root in dataset_roots(data_dirs):
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            by_class[folder.name].append(folder)
    if not by_class:
        raise ValueError(f"no class folders in {data_dirs} (expected one sub-folder per class)")
    classes = sorted(by_class)
    samples, skipped = [], []
    for label, name in enumerate(classes):
        for path in sorted(p for folder in by_class[name] for p in folder.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((str(path), "not an image file type"))
                continue
            if check_images:
                try:
                    decode(path)
                except ImageError as err:
                    skipped.append((str(path), str(err)))
                    continue
            samples.append(Sample(str(path), label))
    return Dataset(classes, group_duplicates(samples), skipped)


def source_of(path: str) -> str:
    """The dataset folder a photo comes from (``<source>/<class>/<file>``): its web source."""
    return Path(path).parent.parent.name


def dhash(image: Image.Image, size: int = 8) -> int:
    """64-bit difference hash: robust to resizing, recompression and small colour changes."""
    small = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def group_duplicates(samples: list[Sample], max_bits: int = NEAR_DUPLICATE_BITS) -> list[Sample]:
    """Give exact (sha256) and near (dHash) duplicates within a class the same group id."""
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    hashes = np.zeros(len(samples), dtype=np.uint64)
    by_digest: dict[bytes, int] = {}
    for i, s in enumerate(samples):
        data = Path(s.path).read_bytes()
        digest = hashlib.sha256(data).digest()
        if digest in by_digest:
            parent[find(i)] = find(by_digest[digest])
        by_digest.setdefault(digest, i)
        try:
            hashes[i] = dhash(decode(data).image)
        except ImageError:
            hashes[i] = np.uint64(i)  # unhashable: its own group
    labels = np.array([s.label for s in samples])
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        h = hashes[idx]
        xor = h[:, None] ^ h[None, :]
        distance = np.unpackbits(xor.view(np.uint8).reshape(len(idx), len(idx), 8), axis=-1).sum(-1)
        for a, b in zip(*np.nonzero(np.triu(distance <= max_bits, k=1)), strict=True):
            parent[find(idx[a])] = find(idx[b])
    roots: dict[int, int] = {}
    return [Sample(s.path, s.label, roots.setdefault(find(i), len(roots))) for i, s in enumerate(samples)]


def split(dataset: Dataset, *, test_fraction: float = 0.3, val_fraction: float = 0.1, seed: int = 1337) -> Split:
    """Deterministic, stratified, group-aware split (70/30 by default; validation carved from train)."""
    rng = random.Random(seed)
    parts: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for label in range(len(dataset.classes)):
        groups = defaultdict(list)
        for s in dataset.samples:
            if s.label == label:
                groups[s.group].append(s)
        order = sorted(groups)
        rng.shuffle(order)
        total = sum(len(g) for g in groups.values())
        taken = {"test": 0, "val": 0}
        targets = {"test": test_fraction * total, "val": val_fraction * (1 - test_fraction) * total}
        for gid in order:
            members = groups[gid]
            part = next((p for p in ("test", "val") if taken[p] + len(members) / 2 <= targets[p]), "train")
            if part != "train":
                taken[part] += len(members)
            parts[part].extend(members)
    return Split(dataset.classes, parts["train"], parts["val"], parts["test"], seed, dataset.skipped)


def split_negatives(folder: str | None, seed: int) -> dict:
    """Non-landmark photos: 40 % train the background class, 20 % calibrate, 40 % test."""
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    if not folder:
        return parts
    files = sorted(s.path for s in scan_flat(folder))
    np.random.default_rng(seed).shuffle(files)  # keep: changes every split
    n = len(files)
    parts["train"], parts["val"], parts["test"] = (files[: int(0.4 * n)], files[int(0.4 * n): int(0.6 * n)],
                                                   files[int(0.6 * n):])
    return parts


UNSEEN_EVERY = 3  # every third class of the outlier landmarks is never used for training or calibration


def split_outliers(folder: str | None, seed: int) -> dict:
    """Landmarks that are not ours (e.g. foreign monuments), by class: every ``UNSEEN_EVERY``-th class is
    ``unseen`` (kept for measuring only); the others' photos are split 40/20/40 like the negatives
    (train joins the background class: outlier exposure; val calibrates; test measures)."""
    parts: dict[str, list] = {"train": [], "val": [], "test": [], "unseen": []}
    if not folder:
        return parts
    dataset = scan(folder, check_images=False)
    unseen = set(dataset.classes[::UNSEEN_EVERY])
    rng = np.random.default_rng(seed)
    for label, name in enumerate(dataset.classes):
        files = sorted(s.path for s in dataset.samples if s.label == label)
        if name in unseen:
            parts["unseen"] += files
            continue
        rng.shuffle(files)
        n = len(files)
        parts["train"] += files[: int(0.4 * n)]
        parts["val"] += files[int(0.4 * n): int(0.6 * n)]
        parts["test"] += files[int(0.6 * n):]
    return parts


def scan_flat(folder: str) -> list[Sample]:
    """Every readable image under ``folder`` (any depth), as label-less samples."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"negatives folder not found: {root}")
    if any(p.is_dir() for p in root.iterdir()):
        return scan(root).samples
    return [Sample(str(p), 0) for p in sorted(root.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def subset(dataset: Dataset, classes: list[str], *, allow_missing: bool = False) -> Dataset:
    """Only ``classes`` (in that order, labels renumbered); e.g. to leave classes out or match a model.

    With ``allow_missing``, classes the dataset lacks stay in the list with no photos.
    """
    missing = [c for c in classes if c not in dataset.classes]
    if missing and not allow_missing:
        raise ValueError(f"classes not in the dataset: {', '.join(missing)}")
    remap = {dataset.classes.index(c): new for new, c in enumerate(classes) if c not in missing}
    samples = [Sample(s.path, remap[s.label], s.group) for s in dataset.samples if s.label in remap]
    return Dataset(list(classes), samples, dataset.skipped)
