"""Visitors' feedback on a result ("Is this right?"): the page's forms, the rules, the JSON twin, CSRF, rate limit."""
import re

import pytest

from testsupport.factories import SAMPLE_CATALOG, build_app, finished_recognition, make_config
from webapp.cli import upsert_landmarks
from webapp.extensions import db
from webapp.models import Recognition

TOP5 = [["Vinh_Ha_Long", 0.91], ["Ho_Hoan_Kiem", 0.05]]


UPLOADER_TOKEN = "the-uploaders-delete-token"


def recognition(app, label="Vinh_Ha_Long", status="done") -> str:
    """A recognition whose uploader holds ``UPLOADER_TOKEN``."""
    from webapp.models import token_digest

    with app.app_context():
        return finished_recognition(label, TOP5 if status == "done" else [], status=status,
                                    delete_token_hash=token_digest(UPLOADER_TOKEN))


def as_uploader(client, rec_id: str):
    """This browser's session holds the upload's delete token, as the uploader's does."""
    with client.session_transaction() as session:
        session["delete_tokens"] = {**session.get("delete_tokens", {}), rec_id: UPLOADER_TOKEN}
    return client


def stored(app, rec_id) -> tuple:
    with app.app_context():
        rec = db.session.get(Recognition, rec_id)
        slug = rec.corrected_landmark.slug if rec.corrected_landmark else None
        return rec.feedback, slug, rec.review_status, rec.feedback_at is not None


def answer(client, rec_id, answer, landmark=None, uploader=True):
    data = {"answer": answer} if landmark is None else {"answer": answer, "landmark": landmark}
    if uploader:
        as_uploader(client, rec_id)
    return client.post(f"/r/{rec_id}/feedback", data=data)


def api_answer(client, rec_id, answer, landmark=None, uploader=True):
    headers = {"X-Delete-Token": UPLOADER_TOKEN} if uploader else {}
    return client.post(f"/api/v1/recognitions/{rec_id}/feedback", json={"answer": answer, "landmark": landmark},
                       headers=headers)


def feedback_block(html: str) -> str:
    match = re.search(r'<section class="feedback".*?</section>', html, re.S)
    return match.group(0) if match else ""


# --- the result page --------------------------------------------------------------------------

def test_a_finished_result_asks_is_this_right_with_the_catalog_sorted_by_folded_name(app, client, catalog):
    with app.app_context():  # "Đ" must sort with "D" (as the catalog search folds it), not after "Z"
        upsert_landmarks([{**SAMPLE_CATALOG[2], "slug": "dinh-doc-lap", "class_key": None,
                           "name_vi": "Dinh Độc Lập", "name_en": "Independence Palace"},
                          {**SAMPLE_CATALOG[2], "slug": "dao-phu-quoc", "class_key": None,
                           "name_vi": "Đảo Phú Quốc", "name_en": "Phu Quoc Island"}])
    rec_id = recognition(app, label=None)  # "not a landmark we know": every landmark is a choice
    as_uploader(client, rec_id)
    client.get("/lang/vi")
    block = feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True))
    assert block.count('name="csrf_token"') == 2  # both answers are real forms
    assert f'action="/r/{rec_id}/feedback"' in block and 'value="correct"' in block and 'value="wrong"' in block
    slugs = re.findall(r'<option value="([^"]*)"', block)
    assert slugs == ["", "none", "dao-phu-quoc", "dinh-doc-lap", "ho-hoan-kiem", "pho-co-hoi-an", "vinh-ha-long"]
    client.get("/lang/en")
    block = feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True))
    slugs = re.findall(r'<option value="([^"]*)"', block)
    assert slugs == ["", "none", "vinh-ha-long", "ho-hoan-kiem", "pho-co-hoi-an", "dinh-doc-lap", "dao-phu-quoc"]
    # the visitor is told before sending that the photo may be kept, inside the form, above its button
    consent = block.index("may be kept and used to improve recognition")
    assert block.index('value="wrong"') < consent < block.index("Send correction")
    assert "None of these / not a landmark" in block


def test_the_landmark_the_model_named_is_not_offered_as_a_correction(app, client, catalog):
    rec_id = recognition(app, label="Vinh_Ha_Long")
    block = feedback_block(as_uploader(client, rec_id).get(f"/r/{rec_id}").get_data(as_text=True))
    assert 'value="vinh-ha-long"' not in block and 'value="ho-hoan-kiem"' in block


def test_only_the_uploader_may_name_the_landmark_others_may_still_answer(app, client, catalog):
    rec_id = recognition(app, label="Vinh_Ha_Long")
    block = feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True))  # not the uploader's browser
    assert re.findall(r'<option value="([^"]*)"', block) == ["", "none"]
    assert "Only the person who uploaded this photo" in block
    page = answer(client, rec_id, "wrong", "ho-hoan-kiem", uploader=False)
    assert page.status_code == 403 and "Only the person who uploaded this photo" in page.get_data(as_text=True)
    api = api_answer(client, rec_id, "wrong", "ho-hoan-kiem", uploader=False)
    assert api.status_code == 403 and api.get_json()["error"]
    assert stored(app, rec_id) == (None, None, None, False)
    assert answer(client, rec_id, "wrong", "none", uploader=False).status_code == 303  # keeps no photo
    assert api_answer(client, rec_id, "correct", uploader=False).status_code == 200


@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_no_feedback_before_the_result_is_done(app, client, catalog, status):
    rec_id = recognition(app, status=status)
    assert feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True)) == ""
    page = answer(client, rec_id, "correct")
    assert page.status_code == 409 and "once the photo is recognised" in page.get_data(as_text=True)
    api = api_answer(client, rec_id, "wrong", "ho-hoan-kiem")
    assert api.status_code == 409 and "once the photo is recognised" in api.get_json()["error"]
    assert stored(app, rec_id) == (None, None, None, False)


def test_yes_is_stored_and_thanked(app, client, catalog):
    rec_id = recognition(app)
    response = answer(client, rec_id, "correct")
    assert response.status_code == 303 and response.location.endswith(f"/r/{rec_id}#feedback")
    assert stored(app, rec_id) == ("correct", None, None, True)
    html = client.get(f"/r/{rec_id}").get_data(as_text=True)
    assert "Thank you! Your answer helps us improve the recogniser." in html
    assert "You told us this result is right." in feedback_block(html)


def test_no_with_a_landmark_waits_for_review_and_the_visitor_may_change_it(app, client, catalog):
    rec_id = recognition(app)
    assert answer(client, rec_id, "wrong", "ho-hoan-kiem").status_code == 303
    assert stored(app, rec_id) == ("wrong", "ho-hoan-kiem", "pending", True)
    block = feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True))
    assert "You told us this photo shows Hoan Kiem Lake" in block
    assert '<option value="ho-hoan-kiem" selected>' in block and "<details class=\"feedback-wrong\" open>" in block

    assert answer(client, rec_id, "wrong", "none").status_code == 303  # "none of these / not a landmark"
    assert stored(app, rec_id) == ("wrong", None, "pending", True)
    assert "none of our landmarks" in feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True))

    assert answer(client, rec_id, "correct").status_code == 303  # "yes" withdraws the pending correction
    assert stored(app, rec_id) == ("correct", None, None, True)


@pytest.mark.parametrize("data, message", [
    ({"answer": "wrong", "landmark": "no-such-place"}, "There is no landmark “no-such-place” in our catalog."),
    ({"answer": "wrong"}, "Choose the right landmark"),
    ({"answer": "wrong", "landmark": ""}, "Choose the right landmark"),
    ({"answer": "maybe", "landmark": "none"}, "Answer whether the result is right or wrong."),
    ({}, "Answer whether the result is right or wrong."),
    ({"answer": "wrong", "landmark": "vinh-ha-long"}, "That is the landmark we named"),
])
def test_bad_answers_are_400_with_a_message_and_store_nothing(app, client, catalog, data, message):
    rec_id = recognition(app)
    response = client.post(f"/r/{rec_id}/feedback", data=data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert stored(app, rec_id) == (None, None, None, False)


def test_after_an_editor_reviewed_it_the_answer_is_final(app, client, catalog):
    rec_id = recognition(app)
    assert answer(client, rec_id, "wrong", "ho-hoan-kiem").status_code == 303
    with app.app_context():
        db.session.get(Recognition, rec_id).review_status = "dismissed"
        db.session.commit()
    page = answer(client, rec_id, "correct")
    assert page.status_code == 409 and "already reviewed your answer" in page.get_data(as_text=True)
    api = api_answer(client, rec_id, "wrong", None)
    assert api.status_code == 409 and "already reviewed your answer" in api.get_json()["error"]
    assert stored(app, rec_id) == ("wrong", "ho-hoan-kiem", "dismissed", True)
    block = feedback_block(client.get(f"/r/{rec_id}").get_data(as_text=True))
    assert "An editor has reviewed your answer" in block and "<form" not in block


def test_unknown_recognition_is_404(client, catalog):
    assert answer(client, "nope", "correct").status_code == 404
    response = api_answer(client, "nope", "correct")
    assert response.status_code == 404 and response.get_json()["error"]


# --- the JSON twin ----------------------------------------------------------------------------

def test_json_twin_stores_and_returns_the_feedback(app, client, catalog):
    rec_id = recognition(app)
    assert client.get(f"/api/v1/recognitions/{rec_id}").get_json()["feedback"] is None
    response = api_answer(client, rec_id, "wrong", "pho-co-hoi-an")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == rec_id
    assert body["feedback"]["answer"] == "wrong" and body["feedback"]["landmark"] == "pho-co-hoi-an"
    assert body["feedback"]["review_status"] == "pending" and body["feedback"]["given_at"]
    assert client.get(f"/api/v1/recognitions/{rec_id}").get_json()["feedback"] == body["feedback"]

    response = api_answer(client, rec_id, "wrong", None)  # null: none of these / not a landmark
    assert response.get_json()["feedback"]["landmark"] is None
    assert stored(app, rec_id) == ("wrong", None, "pending", True)
    response = api_answer(client, rec_id, "correct")
    assert response.get_json()["feedback"] == {**response.get_json()["feedback"], "answer": "correct",
                                               "landmark": None, "review_status": None}


@pytest.mark.parametrize("kwargs", [
    {"data": {"answer": "correct"}},  # a form post (what another site could send) is not JSON: refused
    {"data": '{"answer": "correct"}', "content_type": "text/plain"},
    {"json": ["correct"]},
    {"json": {"answer": "wrong", "landmark": 5}},
    {"json": {"answer": "wrong", "landmark": "no-such-place"}},
])
def test_json_twin_refuses_malformed_bodies_with_400(app, client, catalog, kwargs):
    rec_id = recognition(app)
    response = client.post(f"/api/v1/recognitions/{rec_id}/feedback", **kwargs)
    assert response.status_code == 400
    assert response.get_json()["status"] == 400 and response.get_json()["error"]
    assert stored(app, rec_id) == (None, None, None, False)


# --- CSRF and rate limit ----------------------------------------------------------------------

def test_the_feedback_form_needs_its_csrf_token(tmp_path):
    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    rec_id = recognition(app)
    client = as_uploader(app.test_client(), rec_id)
    html = client.get(f"/r/{rec_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', feedback_block(html)).group(1)
    assert answer(client, rec_id, "wrong", "ho-hoan-kiem").status_code == 400  # no token
    assert stored(app, rec_id) == (None, None, None, False)
    response = client.post(f"/r/{rec_id}/feedback", data={"answer": "wrong", "landmark": "ho-hoan-kiem",
                                                          "csrf_token": token})
    assert response.status_code == 303
    assert stored(app, rec_id) == ("wrong", "ho-hoan-kiem", "pending", True)


def test_feedback_posts_share_one_rate_limit_page_and_api(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, API_RATE_LIMIT="3/minute"))
    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    rec_id = recognition(app)
    client = app.test_client()
    assert [answer(client, rec_id, "correct").status_code for _ in range(2)] == [303, 303]
    assert api_answer(client, rec_id, "correct").status_code == 200
    limited = api_answer(client, rec_id, "correct")
    assert limited.status_code == 429 and "Too many requests" in limited.get_json()["error"]
    assert answer(client, rec_id, "correct").status_code == 429
