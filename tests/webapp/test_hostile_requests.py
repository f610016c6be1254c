"""Hostile requests get a clear 4xx, never a 500: NUL bytes, huge ids, deep JSON, huge searches (SQLite and
PostgreSQL, where NUL bytes and out-of-range integers are errors of the database)."""
import pytest

from testsupport.auth_helpers import api_headers, make_user
from testsupport.factories import SAMPLE_CATALOG

NUL_REQUESTS = [
    ("GET", "/r/abc%00def", None),
    ("GET", "/r/abc%00def/photo", None),
    ("GET", "/api/v1/recognitions/abc%00def", None),
    ("GET", "/landmarks?q=ha%00long", None),
    ("GET", "/landmarks/vinh%00ha-long", None),
    ("GET", "/lang/en?next=/%00", None),
    ("POST", "/login", {"email": "ed\x00@example.org", "password": "x\x00y"}),
    ("POST", "/r/abc%00/feedback", {"answer": "wrong", "landmark": "\x00"}),
]
HUGE_IDS = ["/landmark-photos/99999999999999999999", "/api/v1/models/9223372036854775808",
            "/editor/photos/99999999999999999999"]


@pytest.mark.parametrize("method, url, form", NUL_REQUESTS)
def test_nul_bytes_in_paths_queries_and_fields_are_a_clear_400(any_db_app, method, url, form):
    client = any_db_app.test_client()
    resp = client.open(url, method=method, data=form)
    assert resp.status_code in (400, 404), (url, resp.status_code)


def test_nul_bytes_and_huge_numbers_in_json_are_refused(any_db_app):
    from webapp.cli import upsert_landmarks

    with any_db_app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    headers = api_headers(any_db_app, make_user(any_db_app, "editor"))
    client = any_db_app.test_client()
    resp = client.post("/api/v1/landmarks", headers=headers, json={"slug": "x\u0000y", "name_vi": "a", "name_en": "b",
                                                                    "lat": 10, "lon": 106})
    assert resp.status_code == 400 and "NUL" in resp.get_json()["error"]
    resp = client.patch("/api/v1/landmarks/vinh-ha-long", headers=headers, json={"lat": 10 ** 400})
    assert resp.status_code in (400, 422)


@pytest.mark.parametrize("url", HUGE_IDS)
def test_huge_integer_ids_are_not_found(any_db_app, url):
    make_user(any_db_app, "admin")
    client = any_db_app.test_client()
    client.post("/login", data={"email": "admin@example.org", "password": "correct horse battery staple"})
    assert client.get(url, headers={"Authorization": "Bearer x"}).status_code in (401, 404)


def test_deeply_nested_json_is_a_clear_400(app, client):
    body = "[" * 100_000 + "]" * 100_000
    resp = client.post("/api/v1/recognitions/abc/feedback", data=body, content_type="application/json")
    assert resp.status_code in (400, 404)
    headers = api_headers(app, make_user(app, "editor"))
    resp = client.post("/api/v1/landmarks", data=body, content_type="application/json", headers=headers)
    assert resp.status_code == 400 and resp.get_json()["error"]
