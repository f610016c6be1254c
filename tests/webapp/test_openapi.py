"""The OpenAPI document (webapp/openapi.py): valid OpenAPI 3, complete, and what the routes really answer.

schemathesis calls the app in-process (WSGI) with generated requests and checks every answer against
the document: no 500, a documented status code, content type and body. The seeded cases then check the
answers that random ids cannot reach (a finished recognition, a landmark's photos, a real upload ...).
"""
from __future__ import annotations

from datetime import datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from testsupport.auth_helpers import api_headers, make_user
from testsupport.factories import SAMPLE_CATALOG, finished_recognition, jpeg_bytes, queued_tasks, sample_photos
from webapp.models import token_digest

EXAMPLES = 20  # per operation (about 10 s in all)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TOP5 = [["Vinh_Ha_Long", 0.91], ["Trang_An", 0.05], ["Ho_Hoan_Kiem", 0.02]]
UPLOADER = "the-uploaders-delete-token"  # of the seeded maybe answer


def documented_routes(app) -> set[tuple[str, str]]:
    from webapp.openapi import DOCUMENTED, openapi_path

    return {(method, openapi_path(rule)) for rule in app.url_map.iter_rules() if DOCUMENTED.match(rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_the_document_is_valid_openapi_3(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.")
    assert set(document["components"]["securitySchemes"]) == {"bearer", "deleteToken"}


def test_every_api_route_is_documented_with_all_its_methods(app, client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item if method != "parameters"}
    routes = documented_routes(app)
    assert ("GET", "/healthz") in routes and ("POST", "/api/v1/recognitions") in routes
    assert routes - documented == set(), "document these routes: YAML in the view's docstring (webapp/openapi.py)"
    assert documented <= routes


def test_every_operation_answers_its_errors_and_bodies_by_reference(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert "503" in operation["responses"], (method, path)  # the database can always be down
            if operation.get("security") == [{"bearer": []}]:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_document_is_built_once_per_app(app, client, monkeypatch):
    from webapp import openapi

    builds = []
    monkeypatch.setattr(openapi, "build_document", lambda app: builds.append(app) or {"openapi": "3.1.0"})
    assert [client.get("/api/v1/openapi.json").get_json() for _ in range(3)] == [{"openapi": "3.1.0"}] * 3
    assert len(builds) == 1


def test_a_view_without_a_docstring_operation_is_left_out(app):
    from webapp.openapi import build_document

    view = app.view_functions["api.list_landmarks"]
    documented, view.__doc__ = view.__doc__, "No YAML here."
    try:
        paths = build_document(app)["paths"]
    finally:
        view.__doc__ = documented
    assert "get" not in paths.get("/api/v1/landmarks", {})  # so the coverage test above would fail for it


# --- schemathesis --------------------------------------------------------------------------------

@pytest.fixture
def seeded(app, catalog):
    """A catalog, an admin's bearer token (admins may do everything editors may) and a few rows."""
    from webapp.extensions import db
    from webapp.models import ModelVersion, User

    headers = api_headers(app, make_user(app, "admin"))
    with app.app_context():
        sure = finished_recognition("Vinh_Ha_Long", TOP5, tier="sure", suggestions=["Vinh_Ha_Long"], places=[],
                                    taken_at=datetime(2026, 11, 27, 9, 12, 44), position="near", distance_km=0.4)
        maybe = finished_recognition("Vinh_Ha_Long", TOP5, tier="maybe", suggestions=["Vinh_Ha_Long", "Trang_An"],
                                     places=[["ho-hoan-kiem", 0.64]], delete_token_hash=token_digest(UPLOADER))
        failed = finished_recognition(None, [], status="failed", error="the image data is damaged")
        training = ModelVersion(arch="lenet5", status="training", settings={"epochs": 2},
                                progress={"phase": "fit", "epoch": 1, "epochs": 2, "history": [{"loss": 1.2}]},
                                started_by=db.session.scalars(db.select(User)).one())
        db.session.add(training)
        db.session.commit()
        version = training.id
    return {"headers": headers, "sure": sure, "maybe": maybe, "failed": failed, "version": version}


def test_generated_requests_are_answered_as_documented(app, seeded):
    """Each operation with a few valid requests (deterministic), as an admin: random ids mostly give 404s,
    request bodies are generated from their schemas (new landmarks, feedback, photos)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented_routes(app)) - 1  # schemathesis skips the document's own URL
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def answered_as_documented(case):
            case.call_and_validate(headers=seeded["headers"], checks=CHECKS)

        answered_as_documented()  # a failure names the request, with a curl line to reproduce it


def call(schema, method: str, path: str, **case):
    """One request with these parameters, checked against the document like the generated ones."""
    return schema[path][method].Case(**case).call_and_validate(checks=CHECKS)


def test_seeded_answers_are_as_documented(app, seeded):
    from webapp.extensions import db
    from webapp.models import Recognition

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    editor = seeded["headers"]
    for rec_id in (seeded["sure"], seeded["maybe"], seeded["failed"]):
        body = call(schema, "GET", "/api/v1/recognitions/{rec_id}", path_parameters={"rec_id": rec_id}).json()
        assert body["id"] == rec_id
    correction = dict(path_parameters={"rec_id": seeded["maybe"]}, body={"answer": "wrong", "landmark": "ho-hoan-kiem"},
                      media_type="application/json")
    assert call(schema, "POST", "/api/v1/recognitions/{rec_id}/feedback", **correction).status_code == 403
    answer = call(schema, "POST", "/api/v1/recognitions/{rec_id}/feedback", headers={"X-Delete-Token": UPLOADER},
                  **correction).json()
    assert answer["feedback"]["review_status"] == "pending"
    with_feedback = call(schema, "GET", "/api/v1/recognitions/{rec_id}", path_parameters={"rec_id": seeded["maybe"]})
    assert with_feedback.json()["feedback"]["landmark"] == "ho-hoan-kiem"
    assert len(call(schema, "GET", "/api/v1/landmarks").json()) == 3

    slug = {"slug": "vinh-ha-long"}
    photos = call(schema, "POST", "/api/v1/landmarks/{slug}/photos", path_parameters=slug, headers=editor,
                  body={"photos": [jpeg_bytes()]}, media_type="multipart/form-data").json()["photos"]
    photo = {**slug, "photo_id": photos[0]["id"]}
    assert call(schema, "GET", "/api/v1/landmarks/{slug}/photos", path_parameters=slug, headers=editor).json() == {
        "photos": photos}
    assert call(schema, "GET", "/api/v1/landmarks/{slug}/photos/{photo_id}", path_parameters=photo,
                headers=editor).content[:2] == b"\xff\xd8"
    assert call(schema, "GET", "/api/v1/landmarks/{slug}", path_parameters=slug,
                headers=editor).json()["photos"]["total"] == 1
    new = {"slug": "chua-mot-cot", "name_vi": "Chùa Một Cột", "name_en": "One Pillar Pagoda",
           "lat": 21.03, "lon": 105.83}
    created = call(schema, "POST", "/api/v1/landmarks", headers=editor, body=new, media_type="application/json")
    assert created.status_code == 201
    taken = call(schema, "POST", "/api/v1/landmarks", headers=editor, body=new, media_type="application/json")
    assert taken.status_code == 409 and "slug" in taken.json()["errors"]
    call(schema, "PATCH", "/api/v1/landmarks/{slug}", path_parameters={"slug": "chua-mot-cot"}, headers=editor,
         body={"province": "Hà Nội"}, media_type="application/json")
    invalid = call(schema, "PATCH", "/api/v1/landmarks/{slug}", path_parameters={"slug": "chua-mot-cot"},
                   headers=editor, body={"lat": 91}, media_type="application/json")
    assert invalid.status_code == 422
    assert call(schema, "DELETE", "/api/v1/landmarks/{slug}/photos/{photo_id}", path_parameters=photo,
                headers=editor).status_code == 204
    assert call(schema, "DELETE", "/api/v1/landmarks/{slug}", path_parameters={"slug": "chua-mot-cot"},
                headers=editor).status_code == 204

    versions = call(schema, "GET", "/api/v1/models", headers=editor).json()
    assert [v["id"] for v in versions] == [seeded["version"], "shipped"]
    version = {"version_id": seeded["version"]}
    assert call(schema, "GET", "/api/v1/models/{version_id}", path_parameters=version,
                headers=editor).json()["started_by"] == "admin@example.org"
    assert call(schema, "POST", "/api/v1/models/{version_id}/activate", path_parameters=version,
                headers=editor).status_code == 409  # still training
    assert call(schema, "POST", "/api/v1/models/train", headers=editor).status_code == 409
    call(schema, "GET", "/api/v1/models/shipped", headers=editor)
    call(schema, "POST", "/api/v1/models/shipped/activate", headers=editor)
    assert call(schema, "GET", "/api/v1/models", headers={}).status_code == 401
    assert call(schema, "GET", "/healthz").json() == {"status": "ok"}

    with app.app_context():
        token_less = db.session.get(Recognition, seeded["sure"]).delete_token_hash is None
    assert token_less  # rows made by the factory have no delete token: a wrong one is refused
    refused = call(schema, "DELETE", "/api/v1/recognitions/{rec_id}", path_parameters={"rec_id": seeded["sure"]},
                   headers={"X-Delete-Token": "wrong"})
    assert refused.status_code == 403


def test_a_real_photo_upload_is_answered_as_documented(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    photo, _label = sample_photos(per_class=1, classes=1)[0]
    image = photo if isinstance(photo, bytes) else photo.read_bytes()
    upload = call(schema, "POST", "/api/v1/recognitions", body={"image": image}, media_type="multipart/form-data")
    assert upload.status_code == 202
    body = upload.json()
    assert upload.headers["location"] == [body["status_url"]]
    assert body["status_url"] == f"/api/v1/recognitions/{body['id']}"
    assert queued_tasks(app) == [("worker.tasks.recognize", [body["id"]])]  # on the embedded test broker
    status = call(schema, "GET", "/api/v1/recognitions/{rec_id}", path_parameters={"rec_id": body["id"]}).json()
    assert (status["status"], status["tier"], status["landmark"]) == ("queued", None, None)
    refused = call(schema, "POST", "/api/v1/recognitions", body={"image": b"GIF89a not really"},
                   media_type="multipart/form-data")
    assert refused.status_code == 415
    deleted = call(schema, "DELETE", "/api/v1/recognitions/{rec_id}", path_parameters={"rec_id": body["id"]},
                   headers={"X-Delete-Token": body["delete_token"]})
    assert deleted.status_code == 204


def test_a_body_that_drifts_from_its_schema_is_caught(app, catalog, client):
    """The checks above can fail: here the document says a landmark's ``lat`` is text."""
    document = client.get("/api/v1/openapi.json").get_json()
    document["components"]["schemas"]["Landmark"]["properties"]["lat"] = {"type": "string"}
    app.extensions["openapi"] = document  # what the app now serves
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    with pytest.raises(BaseExceptionGroup) as found:  # schemathesis' FailureGroup
        call(schema, "GET", "/api/v1/landmarks")
    [failure] = found.value.exceptions
    assert isinstance(failure, JsonSchemaError) and "21.0288" in str(failure.instance)


def test_a_row_id_past_the_database_integer_is_a_404_not_a_500(any_db_app):
    """Found by schemathesis: /api/v1/models/<huge int> overflowed the database driver (a 500)."""
    from webapp.cli import upsert_landmarks

    with any_db_app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    client = any_db_app.test_client()
    headers = api_headers(any_db_app, make_user(any_db_app, "admin"))
    for huge in (2**31, 2**70):
        for path in (f"/api/v1/models/{huge}", f"/api/v1/landmarks/vinh-ha-long/photos/{huge}",
                     f"/landmark-photos/{huge}"):
            response = client.get(path, headers=headers)
            assert response.status_code == 404, (path, response.status_code)
    assert client.get(f"/api/v1/models/{2**31 - 1}", headers=headers).get_json()["error"] == \
        "no model version with this id"  # the largest id still reaches the view


def test_an_album_is_answered_as_documented(app, catalog):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    photos = [p if isinstance(p, bytes) else p.read_bytes() for p, _ in sample_photos(per_class=1, classes=2)]
    created = call(schema, "POST", "/api/v1/albums", body={"images": photos + [b"GIF89a not really"]},
                   media_type="multipart/form-data")
    assert created.status_code == 202
    body = created.json()
    assert len(body["recognitions"]) == 2 and [e["status"] for e in body["errors"]] == [415]
    album = call(schema, "GET", "/api/v1/albums/{album_id}", path_parameters={"album_id": body["id"]}).json()
    assert album["counts"]["total"] == 2 and album["counts"]["queued"] == 2 and album["visited"] == []
    added = call(schema, "POST", "/api/v1/albums/{album_id}/images", path_parameters={"album_id": body["id"]},
                 body={"images": photos[:1]}, media_type="multipart/form-data",
                 headers={"X-Delete-Token": body["delete_token"]})
    assert added.status_code == 202 and len(added.json()["recognitions"]) == 1
    deleted = call(schema, "DELETE", "/api/v1/albums/{album_id}", path_parameters={"album_id": body["id"]},
                   headers={"X-Delete-Token": body["delete_token"]})
    assert deleted.status_code == 204
