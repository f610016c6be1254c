"""The JSON API's shapes and errors, exactly as documented in README.md."""
import io

from factories import build_app, finished_recognition, jpeg_bytes, make_config
from webapp import create_app

TOP5 = [["Vinh_Ha_Long", 0.91], ["Trang_An", 0.05], ["Ho_Hoan_Kiem", 0.02], ["Cau_Vang", 0.01], ["Cho_Noi", 0.01]]
LANDMARK_KEYS = {"slug", "class_key", "name_vi", "name_en", "province", "lat", "lon"}


def test_done_recognition_has_landmark_and_alternatives(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5)
    body = client.get(f"/api/v1/recognitions/{rec_id}").get_json()
    assert set(body) == {"id", "status", "landmark", "confidence", "alternatives", "model_version", "matched_by",
                         "created_at", "finished_at", "error", "feedback"}
    assert body["status"] == "done"
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
