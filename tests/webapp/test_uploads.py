"""Uploads through the page and the API: good photos are queued, bad files get a clear 4xx."""
import io
from pathlib import Path

import pytest

from testsupport.factories import build_app, jpeg_bytes, make_config, pixel_bomb, truncated_jpeg
from webapp.extensions import db
from webapp.models import Recognition

BAD_FILES = {
    "empty": (b"", 400, "The file is empty"),
    "text renamed .jpg": (b"hello, I am not a photo\n" * 20, 415, "not an image"),
    "truncated jpeg": (truncated_jpeg(), 415, "damaged or incomplete"),
    "pixel bomb": (pixel_bomb(), 400, "too large"),
}


def post_api(client, data: bytes, name="photo.jpg"):
    return client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), name)})


def test_api_accepts_a_photo_stores_it_and_queues_it(app, client):
    resp = post_api(client, jpeg_bytes())
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["status"] == "queued"
    assert body["status_url"] == f"/api/v1/recognitions/{body['id']}"
    with app.app_context():
        rec = db.session.get(Recognition, body["id"])
        assert rec.image_format == "JPEG"
        assert len(rec.sha256) == 64
        stored = Path(app.config["UPLOAD_DIR"]).iterdir()
        assert {p.name for p in stored} == {f"{rec.stored_name}.orig", f"{rec.stored_name}.jpg"}
        assert "photo" not in rec.stored_name  # the visitor's file name never reaches the disk

    with app.extensions["celery"].connection_for_read() as conn:
        message = conn.SimpleQueue("inference").get(timeout=5)
        assert message.headers["task"] == "worker.tasks.recognize"
        assert message.payload[0] == [body["id"]]


@pytest.mark.parametrize("case", BAD_FILES)
def test_api_rejects_bad_files_with_clear_json_errors(app, client, case):
    data, status, words = BAD_FILES[case]
    resp = post_api(client, data)
    assert resp.status_code == status
    assert words in resp.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Recognition.id))) == 0


@pytest.mark.parametrize("case", BAD_FILES)
def test_upload_page_shows_the_reason_for_bad_files(client, case):
    data, status, words = BAD_FILES[case]
    resp = client.post("/", data={"image": (io.BytesIO(data), "photo.jpg")})
    assert resp.status_code == status
    assert words in resp.get_data(as_text=True)
    assert 'id="upload-form"' in resp.get_data(as_text=True)  # the form is shown again


def test_missing_field_is_400(client):
    resp = client.post("/api/v1/recognitions", data={})
    assert resp.status_code == 400
    assert "No photo" in resp.get_json()["error"]


def test_unsupported_format_is_415(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "GIF")
    resp = post_api(client, buf.getvalue(), "photo.gif")
    assert resp.status_code == 415
    assert "GIF" in resp.get_json()["error"]


def test_files_over_the_limit_are_413(tmp_path):
    app = build_app(make_config(tmp_path, MAX_UPLOAD_MB=1))
    client = app.test_client()
    # over the whole-request limit: refused before the body is read
    resp = post_api(client, b"\xff" * (2 * 1024 * 1024))
    assert resp.status_code == 413
    assert "larger than 1 MB" in resp.get_json()["error"]
    # within the request limit, over the file limit by a few bytes
    resp = post_api(client, b"\xff" * (1024 * 1024 + 10))
    assert resp.status_code == 413
    page = client.post("/", data={"image": (io.BytesIO(b"\xff" * (2 * 1024 * 1024)), "big.jpg")})
    assert page.status_code == 413
    assert "larger than 1 MB" in page.get_data(as_text=True)


def test_page_upload_redirects_to_the_result_page(client):
    resp = client.post("/", data={"image": (io.BytesIO(jpeg_bytes()), "photo.jpg")})
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/r/")
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    assert 'http-equiv="refresh"' in page.get_data(as_text=True)  # <noscript> fallback while queued


def test_page_upload_answers_json_to_the_upload_script(client):
    resp = client.post(
        "/", data={"image": (io.BytesIO(jpeg_bytes()), "photo.jpg")}, headers={"Accept": "application/json"}
    )
    assert resp.status_code == 202
    assert resp.get_json()["result_url"] == f"/r/{resp.get_json()['id']}"


def test_forms_need_a_csrf_token_but_the_api_does_not(tmp_path):
    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    client = app.test_client()
    assert client.post("/", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")}).status_code == 400
    assert post_api(client, jpeg_bytes()).status_code == 202


def flat_png(size=(3000, 2000)) -> bytes:
    out = io.BytesIO()
    from PIL import Image

    Image.new("RGB", size, (40, 90, 160)).save(out, "PNG")  # tiny file, 24 MB to decode
    return out.getvalue()


def test_a_file_needing_more_memory_than_allowed_is_refused_with_a_clear_400(tmp_path):
    app = build_app(make_config(tmp_path, MAX_DECODE_MB=16))
    resp = post_api(app.test_client(), flat_png())
    assert resp.status_code == 400 and "too large to decode" in resp.get_json()["error"]


def test_large_decodes_wait_for_a_free_slot_and_get_503_when_none_frees(tmp_path):
    app = build_app(make_config(tmp_path, LARGE_DECODE_MB=8, LARGE_DECODES=1, DECODE_WAIT_S=0.2))
    client = app.test_client()
    assert post_api(client, flat_png()).status_code == 202  # creates the gate; the slot is free again after
    gate = app.extensions["large_decodes"]
    assert gate.acquire(timeout=1)  # another request decoding a large photo right now
    try:
        busy = post_api(client, flat_png())
        assert busy.status_code == 503 and "busy" in busy.get_json()["error"]
        assert post_api(client, jpeg_bytes()).status_code == 202  # small photos do not wait
    finally:
        gate.release()
    assert post_api(client, flat_png()).status_code == 202
