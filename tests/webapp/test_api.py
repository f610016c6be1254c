"""The JSON API's shapes and errors, exactly as documented in README.md."""
import io

from testsupport.factories import build_app, finished_recognition, jpeg_bytes, make_config
from webapp import create_app

TOP5 = [["Vinh_Ha_Long", 0.91], ["Trang_An", 0.05], ["Ho_Hoan_Kiem", 0.02], ["Cau_Vang", 0.01], ["Cho_Noi", 0.01]]
LANDMARK_KEYS = {"slug", "class_key", "name_vi", "name_en", "province", "lat", "lon"}


def test_done_recognition_has_landmark_and_alternatives(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5)
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert set(body) == {"id", "status", "tier", "landmark", "suggestions", "places", "confidence", "alternatives",
                         "model_version", "matched_by", "created_at", "finished_at", "error", "feedback",
                         "nearby", "taken_at", "position", "distance_km"}
    assert (body["status"], body["tier"], body["suggestions"], body["places"]) == ("done", "sure", [], [])
    assert (body["nearby"], body["taken_at"], body["position"], body["distance_km"]) == ([], None, None, None)
    assert body["landmark"] == {"slug": "vinh-ha-long", "class_key": "Vinh_Ha_Long", "name_vi": "Vịnh Hạ Long",
                                "name_en": "Ha Long Bay", "province": "Quảng Ninh", "lat": 20.9101, "lon": 107.1839}
    assert body["confidence"] == 0.91
    assert body["model_version"] == "vn20-test-1"
    assert body["finished_at"].endswith("+00:00")
    assert [a["class_key"] for a in body["alternatives"]] == [k for k, _ in TOP5]
    # catalog landmarks carry their slug; classes missing from the catalog still get a readable name
    assert body["alternatives"][2] == {"slug": "ho-hoan-kiem", "class_key": "Ho_Hoan_Kiem",
                                       "name_en": "Hoan Kiem Lake", "confidence": 0.02}
    assert body["alternatives"][1] == {"slug": None, "class_key": "Trang_An", "name_en": "Trang An",
                                       "confidence": 0.05}


def test_not_a_known_landmark_has_null_landmark_and_guesses(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition(None, [["Ho_Hoan_Kiem", 0.31], ["Vinh_Ha_Long", 0.2]])
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert body["landmark"] is None
    assert [a["slug"] for a in body["alternatives"]] == ["ho-hoan-kiem", "vinh-ha-long"]


def test_a_sure_answer_names_its_landmark(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5, tier="sure", suggestions=["Vinh_Ha_Long"], places=[])
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert (body["tier"], body["landmark"]["slug"]) == ("sure", "vinh-ha-long")
    assert (body["suggestions"], body["places"]) == ([], [])


def add_photo(app, slug: str) -> int:
    from werkzeug.datastructures import FileStorage

    from webapp.extensions import db
    from webapp.models import Landmark
    from webapp.references import add_reference_photos

    with app.app_context():
        landmark = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).one()
        return add_reference_photos(landmark, [FileStorage(io.BytesIO(jpeg_bytes()), filename="p.jpg")], None)[0].id


def test_a_maybe_answer_has_no_landmark_but_its_candidates_and_places_like_it(app, client, catalog):
    photo_id = add_photo(app, "pho-co-hoi-an")
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5, tier="maybe", suggestions=["Vinh_Ha_Long", "Trang_An"],
                                      places=[["pho-co-hoi-an", 0.71], ["Ho_Hoan_Kiem", 0.64], ["gone", 0.6]])
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert (body["tier"], body["landmark"]) == ("maybe", None)
    assert body["suggestions"] == [
        {"key": "Vinh_Ha_Long", "slug": "vinh-ha-long", "name_vi": "Vịnh Hạ Long", "name_en": "Ha Long Bay",
         "probability": 0.91, "url": "/landmarks/vinh-ha-long"},
        {"key": "Trang_An", "slug": None, "name_vi": "Trang An", "name_en": "Trang An",  # not in this catalog
         "probability": 0.05, "url": None}]
    # a place whose landmark left the catalog since is left out
    assert body["places"] == [
        {"slug": "pho-co-hoi-an", "name_vi": "Phố cổ Hội An", "name_en": "Hoi An Ancient Town", "province": "Quảng Nam",
         "similarity": 0.71, "url": "/landmarks/pho-co-hoi-an", "photo_url": f"/landmark-photos/{photo_id}"},
        {"slug": "ho-hoan-kiem", "name_vi": "Hồ Hoàn Kiếm", "name_en": "Hoan Kiem Lake", "province": "Hà Nội",
         "similarity": 0.64, "url": "/landmarks/ho-hoan-kiem", "photo_url": None}]
    photo = client.get(body["places"][0]["photo_url"])
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg" and photo.data[:2] == b"\xff\xd8"
    assert [a["class_key"] for a in body["alternatives"]] == [k for k, _ in TOP5]  # the raw ranking, unchanged


def test_an_unknown_answer_gives_the_closest_landmarks(app, client, catalog):
    top5 = [["Ho_Hoan_Kiem", 0.12], ["Trang_An", 0.1], ["Vinh_Ha_Long", 0.08], ["Cau_Vang", 0.05]]
    with app.app_context():
        rec_id = finished_recognition(None, top5, tier="unknown", places=[],
                                      suggestions=["Ho_Hoan_Kiem", "Trang_An", "Vinh_Ha_Long"])
        old_id = finished_recognition(None, top5)  # a result from before tiers: its top three
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert (body["tier"], body["landmark"], body["places"]) == ("unknown", None, [])
    assert [(s["key"], s["slug"], s["probability"]) for s in body["suggestions"]] == [
        ("Ho_Hoan_Kiem", "ho-hoan-kiem", 0.12), ("Trang_An", None, 0.1), ("Vinh_Ha_Long", "vinh-ha-long", 0.08)]
    old = client.get(f"/api/v1/recognitions/{old_id}").get_json()
    assert (old["tier"], old["suggestions"]) == ("unknown", body["suggestions"])


def test_a_recognition_still_running_has_no_tier_yet(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition(None, [], status="running")
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert (body["status"], body["tier"], body["landmark"], body["suggestions"], body["places"]) == (
        "running", None, None, [], [])


def test_failed_recognition_reports_its_error(app, client):
    with app.app_context():
        rec_id = finished_recognition(None, [], status="failed", error="the file is empty")
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert (body["status"], body["error"], body["alternatives"]) == ("failed", "the file is empty", [])


def test_landmarks_list_uses_the_same_landmark_objects(client, catalog):
    body = client.get("/api/v1/landmarks").get_json()
    assert [lm["slug"] for lm in body] == sorted(entry["slug"] for entry in catalog)
    assert all(set(lm) == LANDMARK_KEYS for lm in body)
    assert next(lm for lm in body if lm["slug"] == "pho-co-hoi-an")["class_key"] is None


def test_unknown_ids_and_routes_are_json_404(client):
    resp = client.get("/api/v1/recognitions/does-not-exist")
    assert resp.status_code == 404 and resp.get_json()["error"]
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.is_json


def test_wrong_method_is_json_too(client):
    resp = client.delete("/api/v1/landmarks")
    assert resp.status_code == 405 and resp.get_json()["status"] == 405


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_database_down_is_a_clear_503(tmp_path):
    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    resp = app.test_client().get("/api/v1/recognitions/abc")
    assert resp.status_code == 503
    assert "try again" in resp.get_json()["error"]


def test_broker_down_is_a_clear_503(tmp_path):
    config = make_config(tmp_path)
    config["CELERY"] = dict(config["CELERY"], broker_url="redis://127.0.0.1:1/0")
    app = build_app(config)
    resp = app.test_client().post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 503
    assert "try again" in resp.get_json()["error"]
    # a 503 means nothing was accepted: the row and the files are withdrawn
    from pathlib import Path

    from webapp.extensions import db
    from webapp.models import Recognition

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Recognition.id))) == 0
    assert list(Path(app.config["UPLOAD_DIR"]).iterdir()) == []


def test_a_browser_on_another_site_cannot_upload_but_scripts_and_our_pages_can(client):
    def upload(**headers):
        return client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")},
                           headers=headers)

    for headers in ({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                    {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}):
        refused = upload(**headers)
        assert refused.status_code == 403 and "another site" in refused.get_json()["error"], headers
    assert upload().status_code == 202  # curl, scripts: no browser headers
    assert upload(Origin="http://localhost", **{"Sec-Fetch-Site": "same-origin"}).status_code == 202
    assert upload(**{"Sec-Fetch-Site": "none"}).status_code == 202  # typed by the user
