"""Trip albums through the API and the pages (no worker: results are written as the worker writes them).

Rate limits counting photos and TRUSTED_PROXIES are in tests/webapp/test_security.py; a real worker and a
real browser in tests/integration/test_albums_live.py."""
import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from testsupport.factories import build_app, jpeg_bytes, make_config, queued_tasks, truncated_jpeg
from webapp import maintenance
from webapp.extensions import db
from webapp.models import Album, Landmark, Recognition, utcnow
from webapp.uploads import RECOGNIZE_ALBUM_TASK


def photos(*names, bad: str | None = None) -> list:
    files = [(io.BytesIO(jpeg_bytes(color=(20 * i, 100, 200 - 20 * i))), name) for i, name in enumerate(names)]
    if bad:
        files.append((io.BytesIO(truncated_jpeg()), bad))
    return files


def create(client, *names, bad=None, **kw):
    return client.post("/api/v1/albums", data={"images": photos(*names, bad=bad)}, **kw)


def add(client, album_id, token, *names, bad=None):
    return client.post(f"/api/v1/albums/{album_id}/images", data={"images": photos(*names, bad=bad)},
                       headers={"X-Delete-Token": token})


def upload_dir(app) -> set[str]:
    folder = Path(app.config["UPLOAD_DIR"])
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def finish(rec_id: str, class_key: str | None, taken_at: datetime | None = None, tier: str = "sure") -> None:
    """Write a result as the worker does (a sure answer of the landmark with ``class_key``, or unknown)."""
    rec = db.session.get(Recognition, rec_id)
    landmark = db.session.scalars(db.select(Landmark).filter_by(class_key=class_key)).first() if class_key else None
    rec.status, rec.label, rec.landmark, rec.tier, rec.taken_at = "done", class_key, landmark, tier, taken_at
    rec.confidence, rec.top5, rec.model_version, rec.finished_at = 0.9, [[class_key or "Cau_Vang", 0.9]], "v", utcnow()
    rec.suggestions = [] if tier == "sure" else ["Cau_Vang"]
    db.session.commit()


def test_an_album_is_created_with_per_file_errors_and_its_photos_wait_on_the_album_queue(app, client):
    resp = create(client, "a.jpg", "b.jpg", "c.jpg", bad="broken.jpg")
    assert resp.status_code == 202
    body = resp.get_json()
    assert resp.headers["Location"] == body["status_url"] == f"/api/v1/albums/{body['id']}"
    assert len(body["delete_token"]) >= 32
    assert [r["status_url"] for r in body["recognitions"]] == [f"/api/v1/recognitions/{r['id']}"
                                                               for r in body["recognitions"]]
    assert len(body["recognitions"]) == 3
    assert body["errors"] == [{"file": "broken.jpg", "status": 415,
                               "error": "This file cannot be used: the image data is damaged or incomplete."}]
    ids = [r["id"] for r in body["recognitions"]]
    with app.app_context():
        album = db.session.get(Album, body["id"])
        assert album.delete_token_hash and body["delete_token"] not in album.delete_token_hash
        recs = [db.session.get(Recognition, rec_id) for rec_id in ids]
        assert {rec.album_id for rec in recs} == {body["id"]}
        assert all(rec.delete_token_hash is None for rec in recs)  # the album's token deletes them
        assert len(upload_dir(app)) == 6  # two files per accepted photo, none for the refused one
    assert queued_tasks(app, "inference-album") == [(RECOGNIZE_ALBUM_TASK, [rec_id]) for rec_id in ids]
    assert queued_tasks(app, "inference") == []


def test_when_every_file_is_refused_no_album_is_left(app, client):
    resp = client.post("/api/v1/albums", data={"images": [(io.BytesIO(b"not an image" * 50), "a.jpg"),
                                                          (io.BytesIO(truncated_jpeg()), "b.jpg")]})
    assert resp.status_code == 415
    body = resp.get_json()
    assert body["status"] == 415 and body["error"]
    assert [e["file"] for e in body["errors"]] == ["a.jpg", "b.jpg"]
    mixed = client.post("/api/v1/albums", data={"images": [(io.BytesIO(b""), "empty.jpg"),
                                                           (io.BytesIO(truncated_jpeg()), "b.jpg")]})
    assert mixed.status_code == 400 and [e["status"] for e in mixed.get_json()["errors"]] == [400, 415]
    nothing = client.post("/api/v1/albums", data={})
    assert nothing.status_code == 400 and "images" in nothing.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Album)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Recognition)) == 0
    assert upload_dir(app) == set()


def test_photos_are_added_with_the_albums_token_up_to_the_limit(tmp_path):
    app = build_app(make_config(tmp_path, ALBUM_MAX_PHOTOS=3))
    client = app.test_client()
    body = create(client, "1.jpg", "2.jpg").get_json()
    album_id, token = body["id"], body["delete_token"]
    assert add(client, album_id, "guess", "3.jpg").status_code == 403
    assert client.post(f"/api/v1/albums/{album_id}/images", data={"images": photos("3.jpg")}).status_code == 403
    assert add(client, "no-such-album", token, "3.jpg").status_code == 404
    assert add(client, album_id, token).status_code == 400  # no file
    more = add(client, album_id, token, "3.jpg", "4.jpg")
    assert more.status_code == 202
    assert len(more.get_json()["recognitions"]) == 1
    assert more.get_json()["errors"] == [{"file": "4.jpg", "status": 409, "error": "An album holds at most 3 photos."}]
    full = add(client, album_id, token, "5.jpg")
    assert full.status_code == 409 and full.get_json()["errors"][0]["file"] == "5.jpg"
    too_many = create(client, "a", "b", "c", "d").get_json()  # a new album takes the first three
    assert len(too_many["recognitions"]) == 3 and [e["file"] for e in too_many["errors"]] == ["d"]
    assert client.get(f"/api/v1/albums/{album_id}").get_json()["counts"]["total"] == 3


def test_the_album_json_has_results_counts_and_the_landmarks_in_the_order_they_were_taken(app, client, catalog_all):
    body = create(client, *(f"{i}.jpg" for i in range(6))).get_json()
    ids = [r["id"] for r in body["recognitions"]]
    day = datetime(2026, 7, 1, 8, 0)
    with app.app_context():
        finish(ids[0], "Chua_Mot_Cot", day + timedelta(hours=5))  # uploaded first, taken after Hạ Long
        finish(ids[1], "Vinh_Ha_Long", day + timedelta(hours=1))
        finish(ids[2], "Chua_Mot_Cot", day + timedelta(hours=2))
        finish(ids[3], None, day, tier="unknown")  # no landmark: not on the trip
        finish(ids[4], "Ho_Hoan_Kiem")  # no camera time: after the photos that have one
        db.session.get(Recognition, ids[5]).status = "running"
        db.session.commit()
    album = client.get(body["status_url"])
    assert album.status_code == 200
    data = album.get_json()
    assert data["counts"] == {"total": 6, "queued": 0, "running": 1, "done": 5, "failed": 0, "finished": 5}
    assert data["finished"] is False and data["url"] == f"/a/{body['id']}"
    assert [r["id"] for r in data["recognitions"]] == ids  # upload order
    first = data["recognitions"][0]
    assert first["tier"] == "sure" and first["landmark"]["slug"] == "chua-mot-cot"
    assert first["result_url"] == f"/r/{ids[0]}" and first["photo_url"] == f"/r/{ids[0]}/photo"
    assert first["status_url"] == f"/api/v1/recognitions/{ids[0]}"
    assert data["recognitions"][3]["tier"] == "unknown" and data["recognitions"][5]["status"] == "running"
    visited = data["visited"]
    assert [(v["number"], v["landmark"]["class_key"]) for v in visited] == [
        (1, "Vinh_Ha_Long"), (2, "Chua_Mot_Cot"), (3, "Ho_Hoan_Kiem")]
    assert [r["id"] for r in visited[1]["recognitions"]] == [ids[2], ids[0]]  # in the order taken
    assert visited[0]["url"] == "/landmarks/vinh-ha-long"
    assert data["provinces"] == ["Quảng Ninh", "Hà Nội"]
    assert client.get("/api/v1/albums/nope").status_code == 404
    assert client.get("/api/v1/albums/nope").get_json()["error"]


def test_deleting_an_album_removes_every_file_and_row(app, client):
    body = create(client, "a.jpg", "b.jpg", "c.jpg").get_json()
    single = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "s.jpg")}).get_json()
    assert len(upload_dir(app)) == 8
    url = f"/api/v1/albums/{body['id']}"
    assert client.delete(url).status_code == 403
    assert client.delete(url, headers={"X-Delete-Token": single["delete_token"]}).status_code == 403
    assert client.delete(url, headers={"X-Delete-Token": body["delete_token"]}).status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete(url, headers={"X-Delete-Token": body["delete_token"]}).status_code == 404
    for rec in body["recognitions"]:
        assert client.get(rec["status_url"]).status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Recognition)) == 1  # the single photo
        stored = db.session.get(Recognition, single["id"]).stored_name
    assert upload_dir(app) == {f"{stored}.orig", f"{stored}.jpg"}


def test_the_albums_token_deletes_one_of_its_photos(app, client):
    body = create(client, "a.jpg", "b.jpg").get_json()
    first, second = (r["id"] for r in body["recognitions"])
    other = create(client, "c.jpg", "d.jpg").get_json()
    assert client.delete(f"/api/v1/recognitions/{first}",
                         headers={"X-Delete-Token": other["delete_token"]}).status_code == 403
    assert client.delete(f"/api/v1/recognitions/{first}",
                         headers={"X-Delete-Token": body["delete_token"]}).status_code == 204
    assert [r["id"] for r in client.get(body["status_url"]).get_json()["recognitions"]] == [second]


def test_the_purge_removes_old_album_photos_then_the_empty_albums(tmp_path):
    app = build_app(make_config(tmp_path, RETENTION_DAYS=7))
    client = app.test_client()
    old, young = create(client, "a.jpg", "b.jpg").get_json(), create(client, "c.jpg").get_json()
    with app.app_context():
        long_ago = utcnow() - timedelta(days=8)
        db.session.get(Album, old["id"]).created_at = long_ago
        for rec in old["recognitions"]:
            db.session.get(Recognition, rec["id"]).created_at = long_ago
        db.session.commit()
        assert maintenance.purge() == {"deleted": 2, "files": 0, "albums": 1}
        assert db.session.get(Album, old["id"]) is None and db.session.get(Album, young["id"]) is not None
    assert len(upload_dir(app)) == 2  # the young album's photo


def test_the_sweeper_sends_a_stuck_album_photo_back_to_the_album_queue(tmp_path):
    app = build_app(make_config(tmp_path, RECOGNITION_TIMEOUT_S=60))
    client = app.test_client()
    rec_id = create(client, "a.jpg").get_json()["recognitions"][0]["id"]
    queued_tasks(app, "inference-album")
    with app.app_context():
        db.session.get(Recognition, rec_id).enqueued_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
        assert maintenance.sweep()["requeued"] == 1
    assert queued_tasks(app, "inference-album") == [(RECOGNIZE_ALBUM_TASK, [rec_id])]


def test_a_multi_photo_post_may_be_larger_than_one_photo(tmp_path):
    app = build_app(make_config(tmp_path, MAX_UPLOAD_MB=1, ALBUM_MAX_REQUEST_MB=8))
    client = app.test_client()
    data = jpeg_bytes(size=(1600, 1200)) + b"\0" * 600_000  # under 1 MB each, three over the single request's

    def big(count):
        return [(io.BytesIO(data), f"{i}.jpg") for i in range(count)]

    resp = client.post("/api/v1/albums", data={"images": big(3)})
    assert resp.status_code == 202 and len(resp.get_json()["recognitions"]) == 3
    single = client.post("/api/v1/recognitions", data={"image": big(1)[0], "more": big(2)})
    assert single.status_code == 413  # the single-photo endpoints keep MAX_UPLOAD_MB per request


# --- pages ------------------------------------------------------------------------------------------

def csrf_of(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)


@pytest.fixture
def csrf_app(tmp_path):
    return build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))


def test_the_form_without_javascript_makes_an_album_of_several_photos(csrf_app):
    client = csrf_app.test_client()
    csrf = csrf_of(client)
    data = {"images": photos("a.jpg", "b.jpg", bad="broken.jpg"), "csrf_token": csrf}
    assert client.post("/", data={"images": photos("a.jpg", "b.jpg")}).status_code == 400  # no CSRF token
    resp = client.post("/", data=data, headers={"Accept-Language": "en"})
    assert resp.status_code == 303 and re.fullmatch(r"/a/[\w-]{16}", resp.headers["Location"])
    page = client.get(resp.headers["Location"], headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Not added: broken.jpg — This file cannot be used" in page  # each refused file, by name
    assert "0 of 2 recognised" in page and page.count('class="album-photo"') == 2
    assert 'http-equiv="refresh"' in page  # no JavaScript: the page reloads itself while photos wait
    assert 'id="delete-album-link"' in page
    assert 'id="delete-album-link"' not in csrf_app.test_client().get(resp.headers["Location"]).get_data(as_text=True)
    one = client.post("/", data={"images": photos("a.jpg"), "csrf_token": csrf})
    assert one.status_code == 303 and one.headers["Location"].startswith("/r/")  # one photo: its result page
    bad = client.post("/", data={"images": [(io.BytesIO(b"x" * 300), "a.jpg"), (io.BytesIO(b"y" * 300), "b.jpg")],
                                 "csrf_token": csrf}, headers={"Accept-Language": "en"})
    assert bad.status_code == 415
    html = bad.get_data(as_text=True)
    assert "None of these photos could be used." in html and "a.jpg" in html and 'id="upload-form"' in html


def test_the_upload_script_creates_the_album_then_adds_each_photo(csrf_app):
    client = csrf_app.test_client()
    csrf = csrf_of(client)
    json_headers = {"Accept": "application/json"}
    first = client.post("/a", data={"images": photos("a.jpg"), "csrf_token": csrf}, headers=json_headers)
    assert first.status_code == 202
    body = first.get_json()
    assert "delete_token" not in body  # the page keeps it in the session, like a photo's
    assert body["url"] == f"/a/{body['id']}" and body["add_url"] == f"/a/{body['id']}/photos"
    nxt = client.post(body["add_url"], data={"images": photos("b.jpg"), "csrf_token": csrf}, headers=json_headers)
    assert nxt.status_code == 202 and len(nxt.get_json()["recognitions"]) == 1
    refused = client.post(body["add_url"], data={"images": [(io.BytesIO(truncated_jpeg()), "c.jpg")],
                                                 "csrf_token": csrf}, headers=json_headers)
    assert refused.status_code == 415 and refused.get_json()["errors"][0]["file"] == "c.jpg"
    stranger = csrf_app.test_client()
    other = stranger.post(body["add_url"], data={"images": photos("d.jpg"), "csrf_token": csrf_of(stranger)},
                          headers=json_headers)
    assert other.status_code == 403
    assert client.get(body["url"]).get_data(as_text=True).count('class="album-photo"') == 2


def test_the_uploader_deletes_the_album_from_its_page(csrf_app):
    client = csrf_app.test_client()
    csrf = csrf_of(client)
    album_url = client.post("/", data={"images": photos("a.jpg", "b.jpg"), "csrf_token": csrf}).headers["Location"]
    album_id = album_url.rsplit("/", 1)[1]
    page = client.get(album_url).get_data(as_text=True)
    link = re.search(r'id="delete-album-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    rec_id = re.search(r'href="/r/([\w-]+)"', page).group(1)
    result = client.get(f"/r/{rec_id}").get_data(as_text=True)
    assert 'id="delete-link"' in result and f'href="{album_url}"' in result  # its photo: delete it, back to album
    assert "#token=" in link and "?" not in link  # in the fragment: never in a request line or access log
    assert client.get(f"/a/{album_id}/delete?token=guess").status_code == 403
    confirm = client.get(link)
    assert confirm.status_code == 200 and "2 photos" in confirm.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', confirm.get_data(as_text=True)).group(1)
    assert client.post(f"/a/{album_id}/delete", data={"token": token}).status_code == 400  # no CSRF token
    assert client.post(f"/a/{album_id}/delete", data={"token": "x", "csrf_token": csrf}).status_code == 403
    done = client.post(f"/a/{album_id}/delete", data={"token": token, "csrf_token": csrf})
    assert done.status_code == 303
    assert "have been deleted" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert client.get(album_url).status_code == 404
    assert upload_dir(csrf_app) == set()


def test_the_album_page_shows_answers_tiers_the_numbered_trip_map_and_the_summary(app, client, catalog_all):
    body = create(client, *(f"{i}.jpg" for i in range(5))).get_json()
    ids = [r["id"] for r in body["recognitions"]]
    day = datetime(2026, 7, 1, 8, 0)
    with app.app_context():
        finish(ids[0], "Chua_Mot_Cot", day + timedelta(hours=3))
        finish(ids[1], "Vinh_Ha_Long", day + timedelta(hours=1))
        finish(ids[2], "Ho_Hoan_Kiem", day + timedelta(hours=2))
        finish(ids[3], "Cau_Vang", day, tier="maybe")
        finish(ids[4], None, tier="unknown")
    html = client.get(f"/a/{body['id']}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "You visited 3 landmarks in 2 provinces" in html
    assert "5 of 5 recognised" in html and 'http-equiv="refresh"' not in html and "album.js" not in html
    assert html.count("This is") >= 3 and "It might be Golden Bridge" in html and "Not a landmark we know" in html
    numbers = re.findall(r'<text class="vn-map__number"[^>]*>(\d+)</text>', html)
    assert numbers == ["1", "2", "3"]
    stops = re.findall(r'<li class="stop" id="stop-(\d)">.*?class="stop-name" href="/landmarks/([\w-]+)"', html, re.S)
    assert stops == [("1", "vinh-ha-long"), ("2", "ho-hoan-kiem"), ("3", "chua-mot-cot")]  # the order taken
    assert 'href="#stop-1"' in html  # each pin leads to its photos and landmark page
    for tag in re.findall(r"<script[^>]*>", html):  # the CSP allows no inline script
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert " style=" not in html
    vi = client.get(f"/a/{body['id']}", headers={"Accept-Language": "vi"}).get_data(as_text=True)
    assert "Bạn đã đến 3 địa danh ở 2 tỉnh, thành" in vi and "5 / 5 ảnh đã nhận diện" in vi


def test_many_refused_files_are_named_a_few_then_counted(client):
    files = photos("good.jpg") + [(io.BytesIO(b"x" * 100), f"bad-{i}.jpg") for i in range(8)]
    resp = client.post("/", data={"images": files}, headers={"Accept-Language": "en"})
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"], headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert page.count("Not added: bad-") == 5 and "3 more files could not be added." in page
