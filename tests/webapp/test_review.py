"""The editors' review queue of visitors' corrections: permissions, the queue, accept, dismiss, CSRF."""
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from config import EMBED_TASK
from testsupport.auth_helpers import PASSWORD, make_user, signed_in_client
from testsupport.factories import SAMPLE_CATALOG, build_app, finished_recognition, jpeg_bytes, make_config, queued_tasks
from webapp.cli import upsert_landmarks
from webapp.extensions import db
from webapp.models import Landmark, Recognition, ReferencePhoto, User, utcnow
from webapp.storage import display_path, original_path

TOP5 = [["Vinh_Ha_Long", 0.62], ["Ho_Hoan_Kiem", 0.30]]


def correction(app, said: str | None, minutes_ago: int = 0, label="Vinh_Ha_Long", files=True) -> str:
    """A done recognition whose visitor answered "wrong" with the landmark ``said`` (None: "none"),
    with its photo under UPLOAD_DIR as an upload leaves it."""
    with app.app_context():
        rec = db.session.get(Recognition, finished_recognition(label, TOP5))
        rec.stored_name = secrets.token_hex(16)
        rec.feedback, rec.review_status = "wrong", "pending"
        rec.feedback_at = utcnow() - timedelta(minutes=minutes_ago)
        if said:
            rec.corrected_landmark = db.session.scalars(db.select(Landmark).filter_by(slug=said)).one()
        db.session.commit()
        if files:
            folder = Path(app.config["UPLOAD_DIR"])
            folder.mkdir(parents=True, exist_ok=True)
            original_path(rec).write_bytes(jpeg_bytes(color=(200, 90, 40)))
            display_path(rec).write_bytes(jpeg_bytes(color=(200, 90, 40)))
        return rec.id


def review_state(app, rec_id) -> tuple:
    with app.app_context():
        rec = db.session.get(Recognition, rec_id)
        reviewer = db.session.get(User, rec.reviewed_by_id) if rec.reviewed_by_id else None
        return rec.review_status, reviewer.email if reviewer else None, rec.reviewed_at is not None


def reference_photos(app) -> list[tuple]:
    with app.app_context():
        return [(p.landmark.slug, p.source, p.recognition_id, p.stored_name)
                for p in db.session.scalars(db.select(ReferencePhoto).order_by(ReferencePhoto.id))]




@pytest.fixture
def editor(app, catalog):
    return signed_in_client(app, "editor")


# --- permissions ------------------------------------------------------------------------------

ROUTES = [("get", "/editor/corrections"), ("get", "/editor/corrections/{id}/photo"),
          ("post", "/editor/corrections/{id}/accept"), ("post", "/editor/corrections/{id}/dismiss")]


@pytest.mark.parametrize("method, route", ROUTES)
def test_anonymous_visitors_are_sent_to_the_login_page(app, client, catalog, method, route):
    rec_id = correction(app, "ho-hoan-kiem")
    response = getattr(client, method)(route.format(id=rec_id))
    assert response.status_code == 302 and "/login" in response.location
    assert review_state(app, rec_id) == ("pending", None, False)
    assert reference_photos(app) == []


@pytest.mark.parametrize("role", ["editor", "admin"])
@pytest.mark.parametrize("method, route, expected", [
    ("get", "/editor/corrections", 200), ("get", "/editor/corrections/{id}/photo", 200),
    ("post", "/editor/corrections/{id}/accept", 303), ("post", "/editor/corrections/{id}/dismiss", 303)])
def test_editors_and_admins_may_review(app, catalog, role, method, route, expected):
    rec_id = correction(app, "ho-hoan-kiem")
    response = getattr(signed_in_client(app, role), method)(route.format(id=rec_id))
    assert response.status_code == expected


# --- the queue --------------------------------------------------------------------------------

def test_the_queue_shows_pending_corrections_oldest_first(app, editor):
    newer = correction(app, "ho-hoan-kiem", minutes_ago=1)
    older = correction(app, None, minutes_ago=30)
    reviewed = correction(app, "pho-co-hoi-an", minutes_ago=60)
    with app.app_context():  # answered "yes", and already reviewed: not in the queue
        happy = finished_recognition("Vinh_Ha_Long", TOP5)
        db.session.get(Recognition, happy).feedback = "correct"
        db.session.get(Recognition, reviewed).review_status = "dismissed"
        db.session.commit()
    html = editor.get("/editor/corrections").get_data(as_text=True)
    ids = re.findall(r'id="correction-([^"]+)"', html)
    assert ids == [older, newer]
    assert "2 corrections waiting" in html
    assert f'src="/editor/corrections/{newer}/photo"' in html
    item = html[html.index(f'id="correction-{newer}"'):]
    assert "Ha Long Bay" in item and "(62%)" in item  # what the model said
    assert "Hoan Kiem Lake" in item  # what the visitor said
    assert "Accept: add the photo to Hoan Kiem Lake" in item
    oldest = html[html.index(f'id="correction-{older}"'):html.index(f'id="correction-{newer}"')]
    assert "None of these / not a landmark" in oldest and "Only records it; no photo is added." in oldest


def test_the_queue_is_paginated_by_50(app, editor):
    ids = [correction(app, "ho-hoan-kiem", minutes_ago=100 - i, files=False) for i in range(51)]
    first = editor.get("/editor/corrections").get_data(as_text=True)
    assert re.findall(r'id="correction-([^"]+)"', first) == ids[:50]
    assert "51 corrections waiting" in first and "Page 1 of 2" in first
    second = editor.get("/editor/corrections?page=2").get_data(as_text=True)
    assert re.findall(r'id="correction-([^"]+)"', second) == ids[50:]


def test_editors_see_the_photo_without_the_delete_token(app, editor):
    rec_id = correction(app, "ho-hoan-kiem")
    response = editor.get(f"/editor/corrections/{rec_id}/photo")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data[:2] == b"\xff\xd8" and "private" in response.headers["Cache-Control"]


def test_a_correction_deleted_by_its_uploader_disappears_from_the_queue(app, editor):
    rec_id = correction(app, "ho-hoan-kiem")
    with app.app_context():
        db.session.delete(db.session.get(Recognition, rec_id))
        db.session.commit()
    assert f"correction-{rec_id}" not in editor.get("/editor/corrections").get_data(as_text=True)
    assert editor.post(f"/editor/corrections/{rec_id}/accept").status_code == 404


# --- accept and dismiss -----------------------------------------------------------------------

def test_accepting_adds_the_photo_as_a_reference_photo_and_enqueues_its_embedding(app, editor):
    rec_id = correction(app, "ho-hoan-kiem")
    queued_tasks(app)  # nothing else is waiting
    response = editor.post(f"/editor/corrections/{rec_id}/accept")
    assert response.status_code == 303 and response.location.endswith("/editor/corrections?page=1")
    assert review_state(app, rec_id) == ("accepted", "editor@example.org", True)
    photos = reference_photos(app)
    assert [p[:3] for p in photos] == [("ho-hoan-kiem", "correction", rec_id)]
    stored_name = photos[0][3]
    folder = Path(app.config["REFERENCE_DIR"])
    with app.app_context():
        original = original_path(db.session.get(Recognition, rec_id)).read_bytes()
        photo_id = db.session.scalars(db.select(ReferencePhoto.id)).one()
    assert (folder / f"{stored_name}.orig").read_bytes() == original
    assert (folder / f"{stored_name}.jpg").is_file()
    assert queued_tasks(app) == [(EMBED_TASK, [[photo_id]])]
    html = editor.get("/editor/corrections").get_data(as_text=True)
    assert "Accepted: the photo is now a reference photo of Hoan Kiem Lake." in html
    assert f"correction-{rec_id}" not in html


def test_when_the_uploader_deletes_the_photo_the_accepted_copy_goes_too(app, editor):
    from webapp.models import token_digest

    rec_id = correction(app, "ho-hoan-kiem")
    with app.app_context():
        db.session.get(Recognition, rec_id).delete_token_hash = token_digest("uploader-token")
        db.session.commit()
    assert editor.post(f"/editor/corrections/{rec_id}/accept").status_code == 303
    assert len(reference_photos(app)) == 1
    visitor = app.test_client()
    assert "that copy is deleted too" in visitor.get(f"/r/{rec_id}/delete").get_data(as_text=True)
    response = visitor.delete(f"/api/v1/recognitions/{rec_id}", headers={"X-Delete-Token": "uploader-token"})
    assert response.status_code == 204
    assert reference_photos(app) == []
    assert list(Path(app.config["REFERENCE_DIR"]).iterdir()) == []
    assert list(Path(app.config["UPLOAD_DIR"]).iterdir()) == []


def test_accept_as_another_landmark(app, editor):
    rec_id = correction(app, "ho-hoan-kiem")  # the visitor was wrong too
    response = editor.post(f"/editor/corrections/{rec_id}/accept", data={"landmark": "pho-co-hoi-an"})
    assert response.status_code == 303
    assert [p[:3] for p in reference_photos(app)] == [("pho-co-hoi-an", "correction", rec_id)]
    assert review_state(app, rec_id)[0] == "accepted"


def test_accept_as_an_unknown_landmark_is_400(app, editor):
    rec_id = correction(app, None)
    response = editor.post(f"/editor/corrections/{rec_id}/accept", data={"landmark": "atlantis"})
    assert response.status_code == 400 and "There is no landmark “atlantis”" in response.get_data(as_text=True)
    assert review_state(app, rec_id) == ("pending", None, False) and reference_photos(app) == []


def test_accepting_a_none_only_records_it(app, editor):
    rec_id = correction(app, None)
    response = editor.post(f"/editor/corrections/{rec_id}/accept", follow_redirects=True)
    assert "no reference photo was added" in response.get_data(as_text=True)
    assert review_state(app, rec_id) == ("accepted", "editor@example.org", True)
    assert reference_photos(app) == [] and queued_tasks(app) == []


def test_dismissing_records_it_and_adds_nothing(app, editor):
    rec_id = correction(app, "ho-hoan-kiem")
    response = editor.post(f"/editor/corrections/{rec_id}/dismiss", follow_redirects=True)
    assert "Dismissed" in response.get_data(as_text=True)
    assert review_state(app, rec_id) == ("dismissed", "editor@example.org", True)
    assert reference_photos(app) == []


@pytest.mark.parametrize("first, second", [("accept", "accept"), ("accept", "dismiss"), ("dismiss", "accept")])
def test_reviewing_twice_is_409_and_adds_no_second_photo(app, editor, first, second):
    rec_id = correction(app, "ho-hoan-kiem")
    assert editor.post(f"/editor/corrections/{rec_id}/{first}").status_code == 303
    again = editor.post(f"/editor/corrections/{rec_id}/{second}")
    assert again.status_code == 409 and "already been reviewed" in again.get_data(as_text=True)
    assert len(reference_photos(app)) == (1 if first == "accept" else 0)
    assert review_state(app, rec_id)[0] == ("accepted" if first == "accept" else "dismissed")


def test_a_withdrawn_correction_cannot_be_reviewed(app, client, editor):
    rec_id = correction(app, "ho-hoan-kiem")
    assert client.post(f"/r/{rec_id}/feedback", data={"answer": "correct"}).status_code == 303
    response = editor.post(f"/editor/corrections/{rec_id}/accept")
    assert response.status_code == 409 and "no longer waiting for review" in response.get_data(as_text=True)
    assert reference_photos(app) == []


def test_a_purged_photo_is_said_clearly_and_cannot_be_accepted_into_the_references(app, editor):
    rec_id = correction(app, "ho-hoan-kiem", files=False)
    html = editor.get("/editor/corrections").get_data(as_text=True)
    assert "The photo is no longer stored" in html and f"/editor/corrections/{rec_id}/photo" not in html
    assert editor.get(f"/editor/corrections/{rec_id}/photo").status_code == 404
    response = editor.post(f"/editor/corrections/{rec_id}/accept")
    assert response.status_code == 409 and "no longer stored" in response.get_data(as_text=True)
    assert review_state(app, rec_id) == ("pending", None, False) and reference_photos(app) == []
    assert editor.post(f"/editor/corrections/{rec_id}/dismiss").status_code == 303
    assert review_state(app, rec_id)[0] == "dismissed"


def test_an_unreadable_photo_leaves_the_correction_pending(app, editor):
    rec_id = correction(app, "ho-hoan-kiem")
    with app.app_context():
        original_path(db.session.get(Recognition, rec_id)).write_bytes(b"not an image")
    response = editor.post(f"/editor/corrections/{rec_id}/accept")
    assert response.status_code == 409 and "could not be read" in response.get_data(as_text=True)
    assert review_state(app, rec_id) == ("pending", None, False) and reference_photos(app) == []


# --- CSRF -------------------------------------------------------------------------------------

def test_review_actions_need_the_csrf_token(tmp_path):
    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    rec_id = correction(app, "ho-hoan-kiem")
    other = correction(app, "pho-co-hoi-an")
    client = app.test_client()
    login_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                            client.get("/login").get_data(as_text=True)).group(1)
    signed_in = client.post("/login", data={"email": make_user(app, "editor"), "password": PASSWORD,
                                            "csrf_token": login_token})
    assert signed_in.status_code in (302, 303)
    html = client.get("/editor/corrections").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    for action in ("accept", "dismiss"):
        assert client.post(f"/editor/corrections/{rec_id}/{action}").status_code == 400
    assert review_state(app, rec_id) == ("pending", None, False) and reference_photos(app) == []
    assert client.post(f"/editor/corrections/{rec_id}/accept", data={"csrf_token": token}).status_code == 303
    assert client.post(f"/editor/corrections/{other}/dismiss", data={"csrf_token": token}).status_code == 303
    assert review_state(app, rec_id)[0] == "accepted" and review_state(app, other)[0] == "dismissed"
