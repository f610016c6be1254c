"""Validation of the landmark catalog data file (webapp/data/landmarks.json)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "webapp" / "data" / "landmarks.json"
# the recogniser's training data: one folder per class, named by its class key
DATASETS = [ROOT.parent / "shared" / "data" / name for name in ("landmarks-vn20", "landmarks-vn30")]
FIELDS = ("slug", "class_key", "name_vi", "name_en", "province", "lat", "lon",
          "description_vi", "description_en")
# Vietnam's mainland and near-shore islands (Hoàng Sa / Trường Sa are not catalog entries).
LAT_RANGE, LON_RANGE = (8.5, 23.4), (102.1, 109.5)


@pytest.fixture(scope="module")
def entries():
    with CATALOG.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, list)
    return data


def test_at_least_81_entries(entries):
    assert len(entries) >= 81


def test_entries_have_exactly_the_fields(entries):
    for e in entries:
        assert set(e) == set(FIELDS), e.get("slug")


def test_slugs_unique_and_well_formed(entries):
    slugs = [e["slug"] for e in entries]
    assert len(slugs) == len(set(slugs))
    for slug in slugs:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug


def test_class_keys_unique_and_well_formed(entries):
    keys = [e["class_key"] for e in entries if e["class_key"] is not None]
    assert len(keys) == len(set(keys)) == 50
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9_]+", key), key


def test_every_dataset_class_present_exactly_once(entries):
    if not all(folder.is_dir() for folder in DATASETS):
        pytest.skip("the training data (../shared/data) is not here")
    classes = sorted(p.name for folder in DATASETS for p in folder.iterdir() if p.is_dir())
    assert len(classes) == 50
    assert sorted(e["class_key"] for e in entries if e["class_key"]) == classes


def test_cho_noi_is_cai_rang_in_can_tho(entries):
    (cho_noi,) = [e for e in entries if e["class_key"] == "Cho_Noi"]
    assert "Cái Răng" in cho_noi["name_vi"] and cho_noi["province"] == "Cần Thơ"


def test_coordinates_inside_vietnam(entries):
    for e in entries:
        lat, lon = e["lat"], e["lon"]
        assert isinstance(lat, float) and isinstance(lon, float), e["slug"]
        assert LAT_RANGE[0] <= lat <= LAT_RANGE[1], e["slug"]
        assert LON_RANGE[0] <= lon <= LON_RANGE[1], e["slug"]


def test_coordinates_distinct(entries):
    points = [(e["lat"], e["lon"]) for e in entries]
    assert len(points) == len(set(points))


def test_text_fields_non_empty(entries):
    for e in entries:
        for field in FIELDS:
            if field in ("class_key", "lat", "lon"):
                continue
            assert isinstance(e[field], str) and e[field].strip(), (e["slug"], field)


def test_descriptions_have_two_sentences(entries):
    for e in entries:
        for field in ("description_vi", "description_en"):
            sentences = re.split(r"(?<=[.!?])\s+", e[field].strip())
            assert len(sentences) == 2 and sentences[-1][-1] in ".!?", (e["slug"], field)


def test_names_unique(entries):
    for field in ("name_vi", "name_en"):
        names = [e[field] for e in entries]
        assert len(names) == len(set(names)), field
