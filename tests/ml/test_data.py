"""Scanning, duplicate grouping and group-aware, stratified, deterministic splits."""
from pathlib import Path

import pytest

from ml.data import Sample, group_duplicates, scan, split, split_negatives
from testsupport.ml_samples import pattern, scene


def test_scan_lists_classes_and_reports_unreadable(tiny_dataset):
    ds = scan(tiny_dataset)
    assert ds.classes == ["Alpha_Gate", "Beta_Tower"]
    assert len(ds.samples) == 25  # 12 + copy + 12; broken.jpg and notes.txt skipped
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert "not an image" in reasons["broken.jpg"] and "not an image file type" in reasons["notes.txt"]
    assert ds.report()["skipped"] and ds.report()["per_class"] == {"Alpha_Gate": 13, "Beta_Tower": 12}


def test_missing_or_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        scan(tmp_path / "nope")
    with pytest.raises(ValueError, match="no class folders"):
        scan(tmp_path)


def test_exact_and_near_duplicates_share_a_group(tmp_path):
    base = scene(1)
    base.save(tmp_path / "a.jpg", quality=95)
    (tmp_path / "a_copy.jpg").write_bytes((tmp_path / "a.jpg").read_bytes())
    base.resize((60, 60)).save(tmp_path / "a_small.png")  # recompressed, resized: near duplicate
    scene(2).save(tmp_path / "other.jpg")
    samples = group_duplicates([Sample(str(tmp_path / n), 0)
                                for n in ("a.jpg", "a_copy.jpg", "a_small.png", "other.jpg")])
    groups = [s.group for s in samples]
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_split_is_stratified_grouped_and_deterministic(tiny_dataset):
    ds = scan(tiny_dataset)
    first, again = split(ds, seed=7), split(ds, seed=7)
    assert [s.path for s in first.test] == [s.path for s in again.test]
    assert [s.path for s in split(ds, seed=8).test] != [s.path for s in first.test]
    parts = {name: {s.group for s in getattr(first, name)} for name in ("train", "val", "test")}
    assert (not (parts["train"] & parts["test"]) and not (parts["train"] & parts["val"])
            and not (parts["val"] & parts["test"]))
    for label in (0, 1):  # ~30 % of each class in test
        n_test = sum(s.label == label for s in first.test)
        n_all = sum(s.label == label for s in ds.samples)
        assert 0.2 <= n_test / n_all <= 0.4
    assert len(first.train) + len(first.val) + len(first.test) == len(ds.samples)


def test_split_round_trips_through_json(tiny_dataset, tmp_path):
    from ml.data import Split

    s = split(scan(tiny_dataset))
    s.save(tmp_path / "split.json")
    loaded = Split.load(tmp_path / "split.json")
    assert loaded.test == s.test and loaded.classes == s.classes


def test_negatives_split_is_disjoint(tmp_path):
    for i in range(10):
        pattern(i % 2, seed=i).save(tmp_path / f"{i}.png")
    parts = split_negatives(str(tmp_path), seed=3)
    assert sorted(sum(parts.values(), [])) == sorted(str(p) for p in tmp_path.glob("*.png"))
    assert len(parts["train"]) == 4 and len(parts["val"]) == 2 and len(parts["test"]) == 4
