"""A visitor deletes their own upload with the capability the upload gave them (and only they can)."""
import io
import re
from pathlib import Path

from factories import build_app, jpeg_bytes, make_config
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

    confirm = client.get(link)
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    assert client.post(f"/r/{rec_id}/delete", data={"token": token}).status_code == 400  # no CSRF token
    assert client.post(f"/r/{rec_id}/delete", data={"token": "guess", "csrf_token": csrf}).status_code == 403
    done = client.post(f"/r/{rec_id}/delete", data={"token": token, "csrf_token": csrf})
    assert done.status_code == 303
    assert "have been deleted" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert client.get(result_url).status_code == 404
    assert list(Path(app.config["UPLOAD_DIR"]).iterdir()) == []
    with app.app_context():
        assert db.session.get(Recognition, rec_id) is None


def test_a_wrong_token_cannot_delete(client):
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    rec_id = resp.get_json()["id"]
    assert client.get(f"/r/{rec_id}/delete?token=nope").status_code == 403
    assert client.get(f"/r/{rec_id}/delete").status_code == 403
    assert client.post(f"/r/{rec_id}/delete", data={"token": ""}).status_code == 403
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
