"""The catalog says what the recogniser knows: trained on it, learnt it from reference photos, or not yet."""
import json
import os
import re
from pathlib import Path

import pytest

from testsupport.factories import SAMPLE_CATALOG, build_app, make_config
from webapp.extensions import db
from webapp.models import Landmark, ModelVersion, ReferencePhoto


def bundle_files(folder: Path, version: str, labels: list[str]) -> Path:
    """The two files the web reads from a bundle (it never loads the model itself)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundle.json").write_text(json.dumps({"version": version, "arch": "tiny"}))
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


@pytest.fixture
def app(tmp_path):
    """SAMPLE_CATALOG served by a model trained on Ha Long Bay only; Hội An enrolled from photos."""
    bundle = bundle_files(tmp_path / "served", "tiny-1", ["Vinh_Ha_Long", "Somewhere_Else"])
    app = build_app(make_config(tmp_path, MODEL_BUNDLE=str(bundle)))
    from webapp.cli import upsert_landmarks

    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
        add_photo("pho-co-hoi-an", "tiny-1")
        add_photo("ho-hoan-kiem", "older-model")  # embedded by another model: does not count
        add_photo("ho-hoan-kiem", None)  # not embedded yet
    return app


def add_photo(slug: str, embedded_by: str | None) -> None:
    landmark = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).one()
    db.session.add(ReferencePhoto(landmark_id=landmark.id, stored_name="0" * 32, sha256="0" * 64, image_format="JPEG",
                                  embedding=b"\0" * 64 if embedded_by else None, embedding_version=embedded_by))
    db.session.commit()


def page(client, url: str, lang: str = "en") -> str:
    resp = client.get(url, headers={"Accept-Language": lang})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def badges(html: str) -> dict[str, str]:
    """slug → the status badge shown next to it in the list (not on the map)."""
    listing = html[html.index('<ul class="landmark-list">'):]
    return dict(re.findall(r'href="/landmarks/([a-z0-9-]+)">.*?<span class="badge [a-z]+">([^<]+)</span>', listing,
                           re.S))


def test_the_list_says_what_the_recogniser_knows(client):
    html = page(client, "/landmarks")
    assert badges(html) == {"vinh-ha-long": "Recognised", "pho-co-hoi-an": "Learnt from photos",
                            "ho-hoan-kiem": "Not recognised yet"}
    assert "The recogniser knows 2 of the 3 landmarks below." in html


def test_the_filter(client):
    assert set(badges(page(client, "/landmarks?status=recognised"))) == {"vinh-ha-long", "pho-co-hoi-an"}
    html = page(client, "/landmarks?status=not-yet")
    assert set(badges(html)) == {"ho-hoan-kiem"} and html.count('class="vn-map__pin"') == 1
    assert "The recogniser knows 2 of the 3 landmarks below." in html  # the line counts the whole search
    assert 'href="/landmarks?status=not-yet" aria-current="page"' in re.sub(r"\s+", " ", html)
    assert len(badges(page(client, "/landmarks?status=nonsense"))) == 3  # an unknown filter shows all
    html = page(client, "/landmarks?q=hoi+an&status=recognised")
    assert set(badges(html)) == {"pho-co-hoi-an"} and "knows 1 of the 1 landmark below." in html
    assert 'href="/landmarks?q=hoi+an&amp;status=not-yet"' in html  # the filter keeps the search


def test_the_landmark_page_says_it_too(client):
    status = {slug: re.search(r'class="recogniser-status">([^<]+)<', page(client, f"/landmarks/{slug}")).group(1)
              for slug in ("vinh-ha-long", "pho-co-hoi-an", "ho-hoan-kiem")}
    assert status == {"vinh-ha-long": "Recognised", "pho-co-hoi-an": "Learnt from photos",
                      "ho-hoan-kiem": "Not recognised yet"}


def test_in_vietnamese(client):
    html = page(client, "/landmarks", "vi")
    assert set(badges(html).values()) == {"Nhận diện được", "Học từ ảnh", "Chưa nhận diện được"}
    assert "Bộ nhận diện biết 2 trong số 3 địa danh dưới đây." in html


def test_the_active_version_decides(app, client, tmp_path):
    bundle = bundle_files(tmp_path / "retrained", "tiny-2", ["Ho_Hoan_Kiem"])
    with app.app_context():
        db.session.add(ModelVersion(version="tiny-2", bundle_dir=str(bundle), arch="tiny", status="ready",
                                    is_active=True, classes=["Ho_Hoan_Kiem"]))
        db.session.commit()
    # Hội An's photos were embedded by tiny-1: not by the model served now
    assert badges(page(client, "/landmarks")) == {"vinh-ha-long": "Not recognised yet",
                                                  "pho-co-hoi-an": "Not recognised yet",
                                                  "ho-hoan-kiem": "Recognised"}


def test_a_bundle_rewritten_in_place_is_read_again(tmp_path, client):
    labels = tmp_path / "served" / "labels.json"
    assert badges(page(client, "/landmarks"))["ho-hoan-kiem"] == "Not recognised yet"
    labels.write_text(json.dumps(["Vinh_Ha_Long", "Ho_Hoan_Kiem"]))
    stamp = labels.stat().st_mtime_ns + 1_000_000_000  # a clearly newer file, however coarse the clock
    os.utime(labels, ns=(stamp, stamp))
    assert badges(page(client, "/landmarks"))["ho-hoan-kiem"] == "Recognised"


def test_the_shipped_model_is_the_default(tmp_path):
    app = build_app(make_config(tmp_path))
    from webapp.cli import upsert_landmarks

    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    shown = badges(page(app.test_client(), "/landmarks"))
    assert shown["vinh-ha-long"] == "Recognised" and shown["pho-co-hoi-an"] == "Not recognised yet"


def test_a_huge_search_is_a_clear_400_not_database_unavailable(client, catalog):
    resp = client.get("/landmarks", query_string={"q": " ".join(f"word{i}" for i in range(1900))})
    assert resp.status_code == 400
    assert "at most" in resp.get_data(as_text=True)
    assert client.get("/landmarks", query_string={"q": "ha long bay " * 3}).status_code == 200  # repeats are one


def test_catalog_searches_are_rate_limited_but_browsing_is_not(tmp_path):
    from testsupport.factories import build_app, make_config

    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, SEARCH_RATE_LIMIT="3/minute"))
    client = app.test_client()
    assert [client.get("/landmarks?q=ha").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert client.get("/landmarks").status_code == 200
