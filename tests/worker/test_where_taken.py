"""Where a photo was taken: a geotagged upload, recognised by the real task with the shipped model, ends with
its time, coarse position and distance; its coordinates appear in no page, API answer or shown copy."""
import io
import re
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from testsupport.factories import sample_photos
from testsupport.geotagged import geotagged_photo
from webapp.extensions import db
from webapp.models import Recognition
from worker.tasks import recognize

POST_OFFICE = (10.7799, 106.6999)  # Bưu điện Sài Gòn in the catalog
TAKEN_AT = (10.7907, 106.7093)  # about 1.6 km north-east of it
TIME = datetime(2024, 5, 1, 10, 20, 30)


def post_office_photo() -> tuple[bytes, str | None]:
    """A photo of the post office (the first class of the shared photos) or, without them, a generated one."""
    photo, class_key = sample_photos(per_class=1, classes=1)[0]
    return (photo.read_bytes() if isinstance(photo, Path) else photo), class_key


def recognised(app, client, data: bytes, name: str = "photo.jpg") -> Recognition:
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), name)})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    rec_id = resp.get_json()["id"]
    with app.app_context():
        assert recognize.apply(args=[rec_id]).get() == "done"
        rec = db.session.get(Recognition, rec_id)
        db.session.expunge(rec)
    return rec


@pytest.mark.parametrize("fmt", ["jpeg", "heic", "webp"])
def test_a_geotagged_upload_ends_with_time_position_and_distance(app, client, catalog_all, fmt):
    picture, class_key = post_office_photo()
    rec = recognised(app, client, geotagged_photo(fmt, *TAKEN_AT, TIME, image=picture))
    assert rec.taken_at == TIME
    assert rec.position == "near"
    if class_key:  # the real photo: the model names the post office, 1.6 km from where it was taken
        assert rec.label == class_key and rec.tier in ("sure", "maybe")
        assert rec.distance_km == pytest.approx(1.57, abs=0.05)
    else:
        assert rec.distance_km is None or rec.distance_km > 0
    body = client.get(f"/api/v1/recognitions/{rec.id}").get_json()
    assert body["taken_at"] == "2024-05-01T10:20:30" and body["position"] == "near"
    assert body["distance_km"] == (round(rec.distance_km, 1) if rec.distance_km is not None else None)


def test_a_photo_without_gps_has_no_position(app, client, catalog_all):
    picture, _ = post_office_photo()
    rec = recognised(app, client, geotagged_photo("jpeg", None, None, None, image=picture))
    assert (rec.taken_at, rec.position, rec.distance_km) == (None, None, None)
    body = client.get(f"/api/v1/recognitions/{rec.id}").get_json()
    assert (body["taken_at"], body["position"], body["distance_km"]) == (None, None, None)


def test_a_photo_taken_abroad_is_never_sure(app, client, catalog_all):
    picture, _ = post_office_photo()
    rec = recognised(app, client, geotagged_photo("jpeg", 28.6129, 77.2295, TIME, image=picture))  # New Delhi
    assert rec.position == "abroad" and rec.tier != "sure"
    page = client.get(f"/r/{rec.id}").get_data(as_text=True)
    assert "Taken outside Vietnam" in page


def coordinate_texts(lat: float, lon: float) -> list[str]:
    """The ways a page or a JSON answer could spell a coordinate."""
    texts = []
    for value in (lat, lon):
        degrees, minutes = int(value), int((value - int(value)) * 60)
        texts += [repr(value), f"{value:.5f}", f"{value:.4f}", f"{value:.3f}", f"{value:.2f}",
                  f"{value:.4f}".replace(".", ","), f"{value:.2f}".replace(".", ","), f"{degrees}°{minutes}",
                  f"{degrees}° {minutes}"]
    return texts


def test_the_coordinates_never_leave_the_server(app, client, catalog_all):
    picture, class_key = post_office_photo()
    rec = recognised(app, client, geotagged_photo("jpeg", *TAKEN_AT, TIME, image=picture))
    api = client.get(f"/api/v1/recognitions/{rec.id}")
    answers = {"API": api.get_data(as_text=True)}
    for lang in ("en", "vi"):
        client.get(f"/lang/{lang}")
        answers[f"result page ({lang})"] = client.get(f"/r/{rec.id}").get_data(as_text=True)
    body = api.get_json()
    landmarks = [body["landmark"]] if body["landmark"] else [s for s in body["suggestions"] if s["slug"]]
    for lm in landmarks + body["nearby"]:
        answers[f"landmark page {lm['slug']}"] = client.get(f"/landmarks/{lm['slug']}").get_data(as_text=True)
    shown = client.get(f"/r/{rec.id}/photo")
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    jpeg = shown.get_data()
    answers["shown copy"] = jpeg.decode("latin-1")

    for where, text in answers.items():
        for spelled in coordinate_texts(*TAKEN_AT):
            assert spelled not in text, f"{spelled} in the {where}"
    copy = Image.open(io.BytesIO(jpeg))
    assert not copy.getexif() and "exif" not in copy.info and b"Exif\x00" not in jpeg
    if class_key and body["tier"] == "sure":  # what is shown instead: a distance and the landmarks near it
        page = answers["result page (en)"]
        assert re.search(r"Taken about 1\.6 km from\s+Saigon Central Post Office", page)
        assert "Also near here:" in page and body["nearby"] and all(n["distance_km"] <= 25 for n in body["nearby"])


def test_an_albums_answers_never_show_where_its_photos_were_taken(app, client, catalog_all):
    """The album's JSON, its page and its photos' pages say which landmarks, never the photos' coordinates."""
    picture, _class_key = post_office_photo()
    spots = [TAKEN_AT, (21.0368, 105.8346)]  # Sài Gòn, then beside Lăng Bác in Hà Nội
    photos = [(io.BytesIO(geotagged_photo("jpeg", lat, lon, TIME, image=picture)), f"trip{i}.jpg")
              for i, (lat, lon) in enumerate(spots)]
    created = client.post("/api/v1/albums", data={"images": photos})
    assert created.status_code == 202, created.get_data(as_text=True)
    album = created.get_json()
    with app.app_context():
        for queued in album["recognitions"]:
            assert recognize.apply(args=[queued["id"]]).get() == "done"
        taken = db.session.scalars(db.select(Recognition.taken_at).where(Recognition.album_id == album["id"])).all()
    assert taken == [TIME, TIME]  # the worker read them: the photos really carried their EXIF
    answers = {"album API": client.get(album["status_url"]).get_data(as_text=True)}
    for lang in ("en", "vi"):
        client.get(f"/lang/{lang}")
        answers[f"album page ({lang})"] = client.get(f"/a/{album['id']}").get_data(as_text=True)
    for queued in album["recognitions"]:
        answers[f"result {queued['id']}"] = client.get(f"/r/{queued['id']}").get_data(as_text=True)
        answers[f"shown copy {queued['id']}"] = client.get(f"/r/{queued['id']}/photo").get_data().decode("latin-1")
    for where, text in answers.items():
        for lat, lon in spots:
            for spelled in coordinate_texts(lat, lon):
                assert spelled not in text, f"{spelled} in the {where}"
