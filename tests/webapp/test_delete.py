"""A visitor deletes their own upload with the capability the upload gave them (and only they can)."""
import io
import re
from pathlib import Path

from testsupport.factories import build_app, jpeg_bytes, make_config
from webapp.extensions import db
from webapp.models import Recognition


def test_the_uploader_deletes_their_photo_from_the_result_page(tmp_path):
    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    client = app.test_client()
    home = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)
    resp = client.post("/", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg"), "csrf_token": csrf})
    result_url = resp.headers["Location"]
    rec_id = result_url.rsplit("/", 1)[1]

    photo = client.get(f"{result_url}/photo")
    assert "private" in photo.headers["Cache-Control"] and "public" not in photo.headers["Cache-Control"]
    page = client.get(result_url).get_data(as_text=True)
    link = re.search(r'id="delete-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert app.test_client().get(result_url).get_data(as_text=True).count("delete-link") == 0  # others: no link
    path, _, fragment = link.partition("#")
    assert "token" not in path and fragment.startswith("token=")  # the fragment never reaches a server's log

    confirm = client.get(path)
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)  # this browser: from its session
    assert token == fragment.removeprefix("token=")
    assert client.post(f"/r/{rec_id}/delete", data={"token": token}).status_code == 400  # no CSRF token
    assert client.post(f"/r/{rec_id}/delete", data={"token": "guess", "csrf_token": csrf}).status_code == 403
    done = client.post(f"/r/{rec_id}/delete", data={"token": token, "csrf_token": csrf})
    assert done.status_code == 303
    assert "have been deleted" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert client.get(result_url).status_code == 404
    assert list(Path(app.config["UPLOAD_DIR"]).iterdir()) == []
    with app.app_context():
        assert db.session.get(Recognition, rec_id) is None


def test_a_saved_delete_link_works_from_another_browser_through_its_fragment(app, client):
    client.post("/", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    rec_id, token = next(iter(session_tokens(app, client).items()))
    other = app.test_client()
    page = other.get(f"/r/{rec_id}/delete")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="token" value=""' in html and "js/delete.js" in html  # the script reads location.hash
    assert other.post(f"/r/{rec_id}/delete", data={"token": token}).status_code == 303
    assert other.get(f"/r/{rec_id}").status_code == 404


def test_an_old_delete_link_with_the_token_in_its_query_moves_it_to_the_fragment(client):
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    body = resp.get_json()
    moved = client.get(f"/r/{body['id']}/delete?token={body['delete_token']}")
    assert moved.status_code == 303 and moved.location.endswith(f"/r/{body['id']}/delete#token={body['delete_token']}")


def session_tokens(app, client) -> dict:
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    return serializer.loads(client.get_cookie("session").value)["delete_tokens"]


def test_a_wrong_token_cannot_delete(client):
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    rec_id = resp.get_json()["id"]
    assert client.get(f"/r/{rec_id}/delete?token=nope").status_code == 403
    assert client.post(f"/r/{rec_id}/delete", data={"token": ""}).status_code == 403
    assert client.post(f"/r/{rec_id}/delete", data={"token": "nope"}).status_code == 403
    api = client.delete(f"/api/v1/recognitions/{rec_id}", headers={"X-Delete-Token": "nope"})
    assert api.status_code == 403 and api.get_json()["error"]
    assert client.get(f"/api/v1/recognitions/{rec_id}").status_code == 200


def test_api_uploaders_delete_with_their_token(client):
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    body = resp.get_json()
    assert len(body["delete_token"]) >= 32
    deleted = client.delete(f"/api/v1/recognitions/{body['id']}", headers={"X-Delete-Token": body["delete_token"]})
    assert deleted.status_code == 204
    assert client.get(f"/api/v1/recognitions/{body['id']}").status_code == 404
    assert client.delete(f"/api/v1/recognitions/{body['id']}").status_code == 404
