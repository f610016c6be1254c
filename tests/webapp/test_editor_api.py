"""Editors' JSON API: bearer tokens only, landmark create/update/delete with per-field errors, reference photos."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from testsupport.auth_helpers import api_headers, make_user, signed_in_client
from testsupport.factories import jpeg_bytes

SLUG = "vinh-ha-long"
NEW = {"slug": "chua-mot-cot", "name_vi": "Chùa Một Cột", "name_en": "One Pillar Pagoda", "province": "Hà Nội",
       "lat": 21.0359, "lon": 105.8336, "description_vi": "Một ngôi chùa.", "description_en": "A pagoda."}


@pytest.fixture
def headers(app, catalog):
    return api_headers(app, make_user(app, "editor"))


def stored_files(app) -> list[str]:
    folder = Path(app.config["REFERENCE_DIR"])
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def photo_ids(app) -> list[int]:
    from webapp.extensions import db
    from webapp.models import ReferencePhoto

    with app.app_context():
        return list(db.session.scalars(db.select(ReferencePhoto.id).order_by(ReferencePhoto.id)))


def upload(client, headers, *files, slug=SLUG):
    return client.post(f"/api/v1/landmarks/{slug}/photos", headers=headers,
                       data={"photos": [(io.BytesIO(content), name) for content, name in files]})


def api_routes(photo_id: int) -> list[tuple[str, str, dict]]:
    """(method, path, request body keywords); call ``body()`` afresh for each request (files are streams)."""
    base = f"/api/v1/landmarks/{SLUG}"
    return [
        ("POST", "/api/v1/landmarks", lambda: {"json": NEW}),
        ("GET", base, dict), ("PATCH", base, lambda: {"json": {"name_en": "Changed"}}), ("DELETE", base, dict),
        ("GET", f"{base}/photos", dict),
        ("POST", f"{base}/photos", lambda: {"data": {"photos": (io.BytesIO(jpeg_bytes()), "a.jpg")}}),
        ("GET", f"{base}/photos/{photo_id}", dict), ("DELETE", f"{base}/photos/{photo_id}", dict),
    ]


def test_the_permission_table_covers_every_editor_api_route(app):
    tested = {(method, re.sub(r"/\d+$", "/<int:photo_id>", path).replace(SLUG, "<slug>"))
              for method, path, _ in api_routes(1)}
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("editor_api.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == tested


def revoked_headers(app, email: str) -> dict:
    from webapp.extensions import db
    from webapp.models import ApiToken, utcnow

    headers = api_headers(app, email)
    with app.app_context():
        for row in db.session.scalars(db.select(ApiToken)):
            row.revoked_at = utcnow()
        db.session.commit()
    return headers


def test_no_bad_or_revoked_token_gets_401_and_changes_nothing(app, client, catalog):
    photo_id = _add_photo(app)
    email = make_user(app, "editor")
    cases = {
        "none": {},
        "malformed": {"Authorization": "Bearer"},
        "basic": {"Authorization": "Basic ZWRpdG9yOnB3"},
        "unknown": {"Authorization": "Bearer lmk_not-a-real-token"},
        "revoked": revoked_headers(app, email),
    }
    session_client = signed_in_client(app, "admin")  # a signed-in session is not enough: the API is CSRF-exempt
    for name, headers in cases.items():
        for method, path, body in api_routes(photo_id):
            for caller in (client, session_client):
                response = caller.open(path, method=method, headers=headers, **body())
                assert response.status_code == 401, (name, method, path)
                assert response.get_json()["status"] == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert photo_ids(app) == [photo_id]
    assert client.get("/api/v1/landmarks").get_json()[-1]["slug"] == SLUG  # nothing created, changed or deleted


def _add_photo(app) -> int:
    from werkzeug.datastructures import FileStorage

    from webapp.extensions import db
    from webapp.models import Landmark
    from webapp.references import add_reference_photos

    with app.app_context():
        landmark = db.session.scalars(db.select(Landmark).filter_by(slug=SLUG)).one()
        return add_reference_photos(landmark, [FileStorage(io.BytesIO(jpeg_bytes()), filename="p.jpg")], None)[0].id


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_editors_and_admins_may_call_every_route(app, client, catalog, role):
    headers = api_headers(app, make_user(app, role))
    photo_id = _add_photo(app)
    expected = [201, 200, 200, 204, 404, 404, 404, 404]  # after the DELETE the landmark is gone
    got = [client.open(path, method=method, headers=headers, **body()).status_code
           for method, path, body in api_routes(photo_id)]
    assert got == expected
    # the photo routes, on a landmark that still exists
    photo_id = upload(client, headers, (jpeg_bytes(), "a.jpg"), slug="ho-hoan-kiem").get_json()["photos"][0]["id"]
    base = "/api/v1/landmarks/ho-hoan-kiem/photos"
    assert client.get(base, headers=headers).status_code == 200
    assert client.get(f"{base}/{photo_id}", headers=headers).status_code == 200
    assert client.delete(f"{base}/{photo_id}", headers=headers).status_code == 204


def test_create_a_landmark(app, client, headers):
    response = client.post("/api/v1/landmarks", json=dict(NEW, class_key="Chua_Mot_Cot"), headers=headers)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/landmarks/chua-mot-cot"
    body = response.get_json()
    assert body == {**{k: NEW[k] for k in ("slug", "name_vi", "name_en", "province", "lat", "lon")},
                    "class_key": "Chua_Mot_Cot", "description_vi": "Một ngôi chùa.", "description_en": "A pagoda.",
                    "photos": {"total": 0, "embedded": 0}}
    assert client.get(response.headers["Location"], headers=headers).get_json() == body
    public = client.get("/api/v1/landmarks")  # the public list keeps working, without a token
    assert public.status_code == 200 and "chua-mot-cot" in [lm["slug"] for lm in public.get_json()]
    assert client.get("/landmarks/chua-mot-cot").status_code == 200


def test_only_the_required_fields_are_needed(client, headers):
    minimal = {k: NEW[k] for k in ("slug", "name_vi", "name_en", "lat", "lon")}
    body = client.post("/api/v1/landmarks", json=minimal, headers=headers).get_json()
    assert body["province"] == "" and body["description_en"] == "" and body["class_key"] is None


def test_bad_fields_get_per_field_errors(app, client, headers):
    bad = dict(NEW, slug="Chùa Một Cột", lat=90.5, lon="far east", name_en="", province=42, colour="red")
    del bad["name_vi"]
    response = client.post("/api/v1/landmarks", json=bad, headers=headers)
    assert response.status_code == 422
    body = response.get_json()
    assert body["status"] == 422 and "invalid" in body["error"]
    assert set(body["errors"]) == {"slug", "lat", "lon", "name_en", "name_vi", "province", "colour"}
    assert body["errors"]["lat"] == "Must be between -90 and 90."
    assert body["errors"]["lon"] == "Must be a number."
    assert body["errors"]["name_vi"] == "This field is required."
    assert body["errors"]["province"] == "Must be text."
    assert body["errors"]["colour"] == "Unknown field."
    for value in ("true", "null", "1e999", "NaN", '"twenty"', "[20]"):  # 1e999 parses as infinity
        raw = json.dumps(NEW).replace('"lat": 21.0359', f'"lat": {value}')
        response = client.post("/api/v1/landmarks", data=raw, content_type="application/json", headers=headers)
        assert response.status_code == 422 and set(response.get_json()["errors"]) == {"lat"}, value
    assert client.get("/api/v1/landmarks/chua-mot-cot", headers=headers).status_code == 404


@pytest.mark.parametrize("body, content_type", [("not json", "application/json"), ("[1, 2]", "application/json"),
                                                ('{"slug": "x"}', "text/plain"), ("", "application/json")])
def test_a_body_that_is_not_a_json_object_is_a_400(client, headers, body, content_type):
    response = client.post("/api/v1/landmarks", data=body, content_type=content_type, headers=headers)
    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


def test_a_taken_slug_is_a_409(client, headers):
    response = client.post("/api/v1/landmarks", json=dict(NEW, slug=SLUG), headers=headers)
    assert response.status_code == 409
    assert response.get_json()["errors"] == {"slug": "Another landmark (vinh-ha-long) already uses this."}
    response = client.post("/api/v1/landmarks", json=dict(NEW, class_key="Ho_Hoan_Kiem"), headers=headers)
    assert response.status_code == 409 and set(response.get_json()["errors"]) == {"class_key"}
    # a taken slug next to another mistake: the request is invalid as a whole
    response = client.post("/api/v1/landmarks", json=dict(NEW, slug=SLUG, lat=100), headers=headers)
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"slug", "lat"}


def test_patch_changes_only_what_it_is_given(app, client, headers):
    response = client.patch(f"/api/v1/landmarks/{SLUG}", json={"name_en": "Halong Bay", "lat": "20.95"},
                            headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["name_en"] == "Halong Bay" and body["lat"] == 20.95
    assert body["name_vi"] == "Vịnh Hạ Long" and body["class_key"] == "Vinh_Ha_Long" and body["lon"] == 107.1839
    assert body["description_en"] == "A bay of limestone islands."
    assert client.patch(f"/api/v1/landmarks/{SLUG}", json={}, headers=headers).status_code == 200


def test_patch_is_validated_the_same_way(client, headers):
    response = client.patch(f"/api/v1/landmarks/{SLUG}", json={"lon": 181, "name_vi": " "}, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"lon": "Must be between -180 and 180.",
                                             "name_vi": "This field is required."}
    response = client.patch(f"/api/v1/landmarks/{SLUG}", json={"slug": "ho-hoan-kiem"}, headers=headers)
    assert response.status_code == 409
    response = client.patch(f"/api/v1/landmarks/{SLUG}", json={"slug": SLUG, "class_key": "Vinh_Ha_Long"},
                            headers=headers)
    assert response.status_code == 200  # its own slug and class key are no conflict
    assert client.get(f"/api/v1/landmarks/{SLUG}", headers=headers).get_json()["lon"] == 107.1839


def test_patch_can_rename_and_clear_the_class_key(client, headers):
    response = client.patch(f"/api/v1/landmarks/{SLUG}", json={"slug": "ha-long", "class_key": None},
                            headers=headers)
    assert response.status_code == 200 and response.get_json()["class_key"] is None
    assert client.get(f"/api/v1/landmarks/{SLUG}", headers=headers).status_code == 404
    assert client.get("/api/v1/landmarks/ha-long", headers=headers).status_code == 200


@pytest.mark.parametrize("method, path", [("GET", "/api/v1/landmarks/nowhere"), ("PATCH", "/api/v1/landmarks/nowhere"),
                                          ("DELETE", "/api/v1/landmarks/nowhere"),
                                          ("GET", "/api/v1/landmarks/nowhere/photos"),
                                          ("POST", "/api/v1/landmarks/nowhere/photos"),
                                          ("GET", "/api/v1/landmarks/vinh-ha-long/photos/999"),
                                          ("DELETE", "/api/v1/landmarks/vinh-ha-long/photos/999")])
def test_unknown_slugs_and_photos_are_json_404s(client, headers, method, path):
    response = client.open(path, method=method, headers=headers, json={"name_en": "x"} if method == "PATCH" else None)
    assert response.status_code == 404
    body = response.get_json()
    assert body["status"] == 404 and ("nowhere" in body["error"] or "999" in body["error"])


def test_delete_removes_the_landmark_and_its_photo_files(app, client, headers):
    upload(client, headers, (jpeg_bytes(), "a.jpg"), (jpeg_bytes(), "b.jpg"))
    assert len(stored_files(app)) == 4
    assert client.delete(f"/api/v1/landmarks/{SLUG}", headers=headers).status_code == 204
    assert stored_files(app) == [] and photo_ids(app) == []
    assert SLUG not in [lm["slug"] for lm in client.get("/api/v1/landmarks").get_json()]
    assert client.delete(f"/api/v1/landmarks/{SLUG}", headers=headers).status_code == 404


def test_upload_list_fetch_and_remove_photos(app, client, headers):
    response = upload(client, headers, (jpeg_bytes(), "a.jpg"), (jpeg_bytes(color=(9, 9, 9)), "b.jpg"),
                      (jpeg_bytes(size=(50, 80)), "c.jpg"))
    assert response.status_code == 201
    photos = response.get_json()["photos"]
    assert [p["id"] for p in photos] == photo_ids(app) and len(photos) == 3
    assert all(p["embedding"]["state"] == "pending" and p["landmark"] == SLUG for p in photos)
    listed = client.get(f"/api/v1/landmarks/{SLUG}/photos", headers=headers).get_json()["photos"]
    assert listed == photos
    image = client.get(photos[0]["url"], headers=headers)
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert client.get(photos[0]["url"]).status_code == 401
    assert client.get(f"/api/v1/landmarks/{SLUG}", headers=headers).get_json()["photos"] == {"total": 3, "embedded": 0}

    assert client.delete(photos[1]["url"], headers=headers).status_code == 204
    assert photo_ids(app) == [photos[0]["id"], photos[2]["id"]] and len(stored_files(app)) == 4
    assert client.get(photos[1]["url"], headers=headers).status_code == 404


def test_embedding_state_is_reported(app, client, headers):
    from webapp.extensions import db
    from webapp.models import ReferencePhoto, utcnow

    ids = [p["id"] for p in
           upload(client, headers, (jpeg_bytes(), "a.jpg"), (jpeg_bytes(), "b.jpg")).get_json()["photos"]]
    with app.app_context():
        done = db.session.get(ReferencePhoto, ids[0])
        done.embedding, done.embedding_version, done.embedded_at = b"\0" * 8, "vn20-x-1", utcnow()
        db.session.get(ReferencePhoto, ids[1]).error = "cannot decode"
        db.session.commit()
    states = [p["embedding"]
              for p in client.get(f"/api/v1/landmarks/{SLUG}/photos", headers=headers).get_json()["photos"]]
    assert states[0]["state"] == "embedded" and states[0]["version"] == "vn20-x-1" and states[0]["embedded_at"]
    assert states[1] == {"state": "error", "version": None, "embedded_at": None, "error": "cannot decode"}


def test_new_photos_are_sent_to_the_worker(app, client, headers, monkeypatch):
    sent = []
    monkeypatch.setattr(app.extensions["celery"], "send_task", lambda name, args: sent.append((name, args)))
    ids = [p["id"] for p in
           upload(client, headers, (jpeg_bytes(), "a.jpg"), (jpeg_bytes(), "b.jpg")).get_json()["photos"]]
    assert sent == [("worker.tasks.embed_references", [ids])]


@pytest.mark.parametrize("bad, name, status", [(b"", "empty.jpg", 400), (b"%PDF-1.4 not an image", "doc.pdf", 415),
                                               (jpeg_bytes()[:200], "cut.jpg", 415)])
def test_a_bad_file_rejects_the_upload_by_name_and_stores_nothing(app, client, headers, bad, name, status):
    response = upload(client, headers, (jpeg_bytes(), "good.jpg"), (bad, name))
    assert response.status_code == status
    assert response.get_json()["error"].startswith(f"{name}: ")
    assert photo_ids(app) == [] and stored_files(app) == []


def test_an_upload_needs_a_photos_field(client, headers):
    response = client.post(f"/api/v1/landmarks/{SLUG}/photos", headers=headers,
                           data={"image": (io.BytesIO(jpeg_bytes()), "a.jpg")})
    assert response.status_code == 400 and "No photo was sent" in response.get_json()["error"]
