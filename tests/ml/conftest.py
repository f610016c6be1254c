"""Fixtures for the ML tests: generated datasets and a tiny bundle."""
from __future__ import annotations

from pathlib import Path

import pytest

from testsupport.ml_samples import pattern


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """Two classes of 12 distinct generated photos, plus a few duplicates and broken files."""
    root = tmp_path / "data"
    for kind, name in enumerate(["Alpha_Gate", "Beta_Tower"]):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(12):
            pattern(kind, seed=100 * kind + i).save(folder / f"{i}.jpg", quality=92)
    (root / "Alpha_Gate" / "copy.jpg").write_bytes((root / "Alpha_Gate" / "0.jpg").read_bytes())
    (root / "Beta_Tower" / "broken.jpg").write_bytes(b"not really a jpeg")
    (root / "Beta_Tower" / "notes.txt").write_text("ignored")
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    from ml.bundle import make_tiny_bundle

    path = tmp_path_factory.mktemp("bundle") / "tiny"
    make_tiny_bundle(path, ["Alpha_Gate", "Beta_Tower", "Gamma_Bridge"], background=True, threshold=0.2)
    return path
