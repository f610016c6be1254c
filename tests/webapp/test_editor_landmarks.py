"""Editor pages: who may use them, landmark create/edit/delete with inline errors, reference photos, CSRF."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from testsupport.auth_helpers import PASSWORD, make_user, signed_in_client
from testsupport.factories import build_app, jpeg_bytes, make_config

SLUG = "vinh-ha-long"
NEW = {"slug": "chua-mot-cot", "class_key": "", "name_vi": "Chùa Một Cột", "name_en": "One Pillar Pagoda",
       "province": "Hà Nội", "lat": "21,0359", "lon": "105.8336",
       "description_vi": "Một ngôi chùa.", "description_en": "A pagoda on one pillar."}


def add_photos(app, count: int = 1, slug: str = SLUG) -> list[int]:
    from werkzeug.datastructures import FileStorage

    from webapp.extensions import db
    from webapp.models import Landmark
    from webapp.references import add_reference_photos

    with app.app_context():
        landmark = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).one()
        files = [FileStorage(io.BytesIO(jpeg_bytes(color=(i * 40, 90, 200))), filename=f"p{i}.jpg")
                 for i in range(count)]
        return [photo.id for photo in add_reference_photos(landmark, files, None)]


def stored_files(app) -> list[str]:
    folder = Path(app.config["REFERENCE_DIR"])
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def landmark(app, slug: str):
    from webapp.extensions import db
    from webapp.models import Landmark

    with app.app_context():
        found = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).first()
        if found is not None:
            db.session.expunge(found)
        return found


def photo_rows(app) -> list:
    from webapp.extensions import db
    from webapp.models import ReferencePhoto

    with app.app_context():
        return list(db.session.scalars(db.select(ReferencePhoto.id)))


@pytest.fixture
def editor(app, catalog):
    return signed_in_client(app, "editor")


def page_routes(photo_id: int) -> list[tuple[str, str]]:
    base = f"/editor/landmarks/{SLUG}"
    return [
        ("GET", "/editor/landmarks"), ("GET", "/editor/landmarks/new"), ("POST", "/editor/landmarks/new"),
        ("GET", f"{base}/edit"), ("POST", f"{base}/edit"), ("GET", f"{base}/delete"), ("POST", f"{base}/delete"),
        ("GET", f"{base}/photos"), ("POST", f"{base}/photos"),
        ("GET", f"{base}/photos/{photo_id}/remove"), ("POST", f"{base}/photos/{photo_id}/remove"),
        ("POST", f"{base}/photos/{photo_id}/cover"),
        ("GET", f"/editor/photos/{photo_id}"),
    ]


def test_the_permission_table_covers_every_editor_page(app):
    tested = {(method, re.sub(r"\d+", "<int:photo_id>", path).replace(SLUG, "<slug>"))
              for method, path in page_routes(1)}
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("editor.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == tested


def test_anonymous_visitors_are_sent_to_sign_in_and_nothing_changes(app, client, catalog):
    photo_id = add_photos(app)[0]
    files_before = stored_files(app)
    for method, path in page_routes(photo_id):
        response = client.open(path, method=method, data=dict(NEW, slug="sneaky"))
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/login?next="), (method, path)
    assert landmark(app, SLUG) is not None and landmark(app, "sneaky") is None
    assert photo_rows(app) == [photo_id] and stored_files(app) == files_before


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_editors_and_admins_may_open_every_page(app, catalog, role):
    photo_id = add_photos(app)[0]
    client = signed_in_client(app, role)
    for method, path in page_routes(photo_id):
        if method == "GET":
            response = client.get(path)
            assert response.status_code == 200, (role, path)
            if response.mimetype != "text/html":
                continue
            html = response.get_data(as_text=True)
            assert " style=" not in html and "<script>" not in html and " onclick=" not in html  # CSP


def test_a_deactivated_editor_is_signed_out(app, editor):
    from webapp.extensions import db
    from webapp.models import User

    assert editor.get("/editor/landmarks").status_code == 200
    with app.app_context():
        db.session.scalars(db.select(User)).one().active = False
        db.session.commit()
    assert editor.get("/editor/landmarks").status_code == 302


def test_the_editor_menu_shows_only_when_signed_in(app, client, editor):
    public = client.get("/").get_data(as_text=True)
    assert "/editor/landmarks" not in public and "Sign out" not in public
    html = editor.get("/").get_data(as_text=True)
    assert 'href="/editor/landmarks"' in html and 'action="/logout"' in html and "Sign out" in html
    for endpoint, label in (("review.queue", "Corrections"), ("models.index", "Models")):
        assert (label in html) == (endpoint in app.view_functions)  # links only to parts that exist


def test_list_searches_and_counts_photos_and_embeddings(app, editor):
    from webapp.extensions import db
    from webapp.models import ReferencePhoto

    first, _second = add_photos(app, 2)
    with app.app_context():
        photo = db.session.get(ReferencePhoto, first)
        photo.embedding, photo.embedding_version = b"\0" * 16, "vn20-test-1"
        db.session.commit()
    html = editor.get("/editor/landmarks").get_data(as_text=True)
    assert "3 landmarks" in html and "2 photos, 1 embedded" in html and "0 photos, 0 embedded" in html
    found = editor.get("/editor/landmarks?q=ha long").get_data(as_text=True)  # without diacritics
    assert "1 landmark" in found and "Ha Long Bay" in found and "Hoan Kiem Lake" not in found


def test_create_a_landmark(app, editor, client):
    response = editor.post("/editor/landmarks/new", data=NEW)
    assert response.status_code == 303
    created = landmark(app, "chua-mot-cot")
    assert created.name_vi == "Chùa Một Cột" and created.lat == pytest.approx(21.0359)
    assert created.class_key is None and created.province == "Hà Nội"
    assert "A pagoda on one pillar." in client.get("/landmarks/chua-mot-cot").get_data(as_text=True)
    assert "One Pillar Pagoda was added." in editor.get(response.headers["Location"]).get_data(as_text=True)


def test_invalid_fields_get_inline_errors_and_nothing_is_saved(app, editor):
    bad = dict(NEW, slug="Chua Mot Cot", name_en="  ", lat="91", lon="east", class_key="Vinh Ha Long")
    response = editor.post("/editor/landmarks/new", data=bad)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    errors = dict(re.findall(r'<span class="field-error" id="([a-z_]+)-error">([^<]+)</span>', html))
    assert set(errors) == {"slug", "name_en", "lat", "lon", "class_key"}
    assert "lower-case" in errors["slug"] and errors["name_en"] == "This field is required."
    assert errors["lat"] == "Must be between -90 and 90." and errors["lon"] == "Must be a number."
    assert 'value="Chua Mot Cot"' in html  # what was typed stays in the form
    assert landmark(app, "chua-mot-cot") is None and landmark(app, "Chua Mot Cot") is None


def test_slug_and_class_key_must_be_unique(app, editor):
    response = editor.post("/editor/landmarks/new", data=dict(NEW, slug=SLUG, class_key="Ho_Hoan_Kiem"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Another landmark (vinh-ha-long) already uses this." in html
    assert "Another landmark (ho-hoan-kiem) already uses this." in html


def test_edit_a_landmark(app, editor):
    form = editor.get(f"/editor/landmarks/{SLUG}/edit").get_data(as_text=True)
    assert 'value="Vịnh Hạ Long"' in form and 'value="Vinh_Ha_Long"' in form and "A bay of limestone" in form
    values = dict(NEW, slug=SLUG, class_key="Vinh_Ha_Long", name_en="Halong Bay", lat="20.95", lon="-107.5")
    response = editor.post(f"/editor/landmarks/{SLUG}/edit", data=values)  # its own slug is no conflict
    assert response.status_code == 303
    edited = landmark(app, SLUG)
    assert edited.name_en == "Halong Bay" and edited.lon == -107.5 and edited.class_key == "Vinh_Ha_Long"
    assert "halong bay" in edited.search_text
    response = editor.post(f"/editor/landmarks/{SLUG}/edit", data=dict(values, lon="-180.5", slug="ho-hoan-kiem"))
    assert response.status_code == 422
    assert landmark(app, SLUG).lon == -107.5
    assert editor.get("/editor/landmarks/no-such-place/edit").status_code == 404


def test_renaming_the_slug_moves_the_landmark(app, editor):
    response = editor.post(f"/editor/landmarks/{SLUG}/edit",
                           data=dict(NEW, slug="ha-long", name_vi="Vịnh Hạ Long", name_en="Ha Long Bay"))
    assert response.status_code == 303
    assert landmark(app, SLUG) is None and landmark(app, "ha-long").class_key is None


def test_delete_asks_first_then_removes_the_landmark_and_its_photo_files(app, editor):
    from testsupport.factories import finished_recognition
    from webapp.extensions import db
    from webapp.models import Recognition

    add_photos(app, 2)
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", [["Vinh_Ha_Long", 0.9]])
    assert len(stored_files(app)) == 4  # original + display copy per photo
    confirm = editor.get(f"/editor/landmarks/{SLUG}/delete").get_data(as_text=True)
    assert "2 reference photos" in confirm and "Vinh_Ha_Long" in confirm and 'method="post"' in confirm
    assert landmark(app, SLUG) is not None  # the GET deleted nothing
    response = editor.post(f"/editor/landmarks/{SLUG}/delete")
    assert response.status_code == 303
    assert landmark(app, SLUG) is None and photo_rows(app) == [] and stored_files(app) == []
    with app.app_context():
        rec = db.session.get(Recognition, rec_id)
        assert rec.label == "Vinh_Ha_Long" and rec.landmark_id is None  # the visitor's result stays
    assert editor.post(f"/editor/landmarks/{SLUG}/delete").status_code == 404


def upload(client, *files, slug=SLUG):
    data = {"photos": [(io.BytesIO(content), name) for content, name in files]}
    return client.post(f"/editor/landmarks/{slug}/photos", data=data, content_type="multipart/form-data")


def test_upload_several_photos_at_once(app, editor):
    response = upload(editor, (jpeg_bytes(), "a.jpg"), (jpeg_bytes(color=(1, 2, 3)), "b.jpeg"),
                      (jpeg_bytes(size=(64, 64)), "c.jpg"))
    assert response.status_code == 303
    assert len(photo_rows(app)) == 3 and len(stored_files(app)) == 6
    html = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert "3 photos added" in html and html.count("embedding pending</span>") == 3
    for photo_id in photo_rows(app):
        image = editor.get(f"/editor/photos/{photo_id}")
        assert image.status_code == 200 and image.mimetype == "image/jpeg"
        assert "private" in image.headers["Cache-Control"]


def test_one_bad_file_rejects_the_whole_upload_by_name(app, editor):
    response = upload(editor, (jpeg_bytes(), "good.jpg"), (b"just some notes", "notes.jpg"))
    assert response.status_code == 415
    html = response.get_data(as_text=True)
    assert re.search(r'class="error" role="alert">notes\.jpg: [^<]+</p>', html)
    assert photo_rows(app) == [] and stored_files(app) == []


def test_an_upload_without_files_says_so(app, editor):
    response = editor.post(f"/editor/landmarks/{SLUG}/photos", data={"photos": (io.BytesIO(b""), "")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert "No photo was sent" in response.get_data(as_text=True)


def test_several_photos_may_together_exceed_the_single_upload_limit(tmp_path):
    import numpy as np
    from PIL import Image

    # the request limit create_app derives from MAX_UPLOAD_MB, set explicitly (Flask's default None wins its setdefault)
    app = build_app(make_config(tmp_path, MAX_UPLOAD_MB=1, MAX_CONTENT_LENGTH=1024 * 1024 + 64 * 1024))
    from testsupport.factories import SAMPLE_CATALOG
    from webapp.cli import upsert_landmarks

    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (600, 700, 3), dtype=np.uint8)).save(buf, "JPEG",
                                                                                                    quality=95)
    photo = buf.getvalue()
    assert 300_000 < len(photo) < 1024 * 1024
    client = signed_in_client(app, "editor")
    response = upload(client, *[(photo, f"{i}.jpg") for i in range(4)])  # > 1 MB together
    assert response.status_code == 303
    assert len(photo_rows(app)) == 4
    anonymous = app.test_client().post(f"/editor/landmarks/{SLUG}/photos",
                                       data={"photos": [(io.BytesIO(photo), f"{i}.jpg") for i in range(4)]})
    assert anonymous.status_code == 302
    too_many = upload(client, *[(photo, f"{i}.jpg") for i in range(21)])
    assert too_many.status_code == 400 and "At most 20 photos at once" in too_many.get_data(as_text=True)
    assert len(photo_rows(app)) == 4
    assert len(photo_rows(app)) == 4


def test_embedding_states_are_shown(app, editor):
    from webapp.extensions import db
    from webapp.models import ReferencePhoto

    done, failed, _waiting = add_photos(app, 3)
    with app.app_context():
        db.session.get(ReferencePhoto, done).embedding = b"\0" * 16
        db.session.get(ReferencePhoto, done).embedding_version = "vn20-effnet-1a2b"
        db.session.get(ReferencePhoto, failed).error = "could not decode <the file>"
        db.session.commit()
    html = editor.get(f"/editor/landmarks/{SLUG}/photos").get_data(as_text=True)
    assert "embedded with vn20-effnet-1a2b" in html
    assert "error: could not decode &lt;the file&gt;" in html
    assert "embedding pending" in html


def test_remove_a_photo_after_confirming(app, editor):
    keep, remove = add_photos(app, 2)
    path = f"/editor/landmarks/{SLUG}/photos/{remove}/remove"
    confirm = editor.get(path).get_data(as_text=True)
    assert f"/editor/photos/{remove}" in confirm and f'action="{path}"' in confirm
    assert len(photo_rows(app)) == 2
    response = editor.post(path)
    assert response.status_code == 303
    assert photo_rows(app) == [keep] and len(stored_files(app)) == 2
    assert editor.get(f"/editor/photos/{remove}").status_code == 404
    assert editor.post(path).status_code == 404


def cover_of(app, slug: str = SLUG) -> int | None:
    return landmark(app, slug).cover_photo_id


def shown_photo(client, slug: str = SLUG) -> str | None:
    """The representative photo's URL on the public landmark page, or None."""
    page = client.get(f"/landmarks/{slug}").get_data(as_text=True)
    found = re.search(r'<figure class="cover"><img src="([^"]+)"', page)
    return found.group(1) if found else None


def test_an_editor_chooses_the_photo_that_represents_the_landmark(app, editor, client):
    from webapp.extensions import db
    from webapp.models import ReferencePhoto

    first, second, visitors = add_photos(app, 3)
    with app.app_context():  # a visitor's accepted correction: given to improve recognition, not to be shown
        db.session.get(ReferencePhoto, visitors).source = "correction"
        db.session.commit()
    assert shown_photo(client) == f"/landmark-photos/{first}"  # by default: the first photo an editor added
    assert client.get(f"/landmark-photos/{first}").status_code == 200
    assert [client.get(f"/landmark-photos/{p}").status_code for p in (second, visitors)] == [404, 404]
    html = editor.get(f"/editor/landmarks/{SLUG}/photos").get_data(as_text=True)
    assert html.count("Use as the landmark's photo") == 1 and f"/photos/{second}/cover" in html
    assert f"/photos/{visitors}/cover" not in html and "The landmark's photo" in html

    assert client.post(f"/editor/landmarks/{SLUG}/photos/{second}/cover").status_code == 302  # anonymous: sign in
    assert cover_of(app) is None
    response = editor.post(f"/editor/landmarks/{SLUG}/photos/{second}/cover")
    assert response.status_code == 303 and cover_of(app) == second
    assert "now represents Ha Long Bay" in editor.get(response.headers["Location"]).get_data(as_text=True)
    assert shown_photo(client) == f"/landmark-photos/{second}"
    assert [client.get(f"/landmark-photos/{p}").status_code for p in (first, second)] == [404, 200]

    assert editor.post(f"/editor/landmarks/{SLUG}/photos/{visitors}/cover").status_code == 400
    other = add_photos(app, 1, slug="ho-hoan-kiem")[0]
    assert editor.post(f"/editor/landmarks/{SLUG}/photos/{other}/cover").status_code == 404  # not this landmark's
    assert cover_of(app) == second and cover_of(app, "ho-hoan-kiem") is None

    assert editor.post(f"/editor/landmarks/{SLUG}/photos/{second}/remove").status_code == 303
    assert cover_of(app) is None and shown_photo(client) == f"/landmark-photos/{first}"  # back to the default
    assert editor.post(f"/editor/landmarks/{SLUG}/photos/{first}/remove").status_code == 303
    assert shown_photo(client) is None  # only the visitor's photo is left: none is shown


def test_a_landmark_with_a_chosen_photo_can_still_be_deleted(any_db_app):
    from testsupport.factories import SAMPLE_CATALOG
    from webapp.cli import upsert_landmarks
    from webapp.editing import delete_landmark
    from webapp.extensions import db
    from webapp.models import Landmark, ReferencePhoto
    from webapp.references import set_cover_photo

    with any_db_app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    chosen = add_photos(any_db_app, 2, slug=SLUG)[1]
    with any_db_app.app_context():
        found = db.session.scalars(db.select(Landmark).filter_by(slug=SLUG)).one()
        set_cover_photo(found, db.session.get(ReferencePhoto, chosen))
        delete_landmark(found)
        assert db.session.scalars(db.select(Landmark).filter_by(slug=SLUG)).first() is None
        assert db.session.scalar(db.select(db.func.count(ReferencePhoto.id))) == 0


def test_a_photo_is_reached_only_through_its_own_landmark(app, editor):
    photo_id = add_photos(app, 1, slug="ho-hoan-kiem")[0]
    assert editor.get(f"/editor/landmarks/{SLUG}/photos/{photo_id}/remove").status_code == 404
    assert editor.post(f"/editor/landmarks/{SLUG}/photos/{photo_id}/remove").status_code == 404
    assert photo_rows(app) == [photo_id]


def test_descriptions_are_escaped_on_public_and_editor_pages(app, editor, client):
    script = '<script>alert("x")</script>'
    values = dict(NEW, name_en=f"Pagoda {script}", description_en=script, description_vi=script)
    assert editor.post("/editor/landmarks/new", data=values).status_code == 303
    for page in (client.get("/landmarks/chua-mot-cot"), client.get("/lang/vi?next=/landmarks/chua-mot-cot",
                                                                     follow_redirects=True),
                 editor.get("/editor/landmarks/chua-mot-cot/edit"), editor.get("/editor/landmarks?q=chua"),
                 editor.get("/editor/landmarks/chua-mot-cot/delete")):
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert script not in html
        assert "&lt;script&gt;" in html


# --- CSRF -------------------------------------------------------------------------------------

def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


@pytest.fixture
def csrf_editor(tmp_path):
    """An app that checks CSRF tokens, with a signed-in editor (through the real form and its token)."""
    from testsupport.factories import SAMPLE_CATALOG
    from webapp.cli import upsert_landmarks

    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    client = app.test_client()
    email = make_user(app, "editor")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 303
    return app, client


def test_every_editor_form_needs_the_csrf_token(csrf_editor):
    app, client = csrf_editor
    photo_id = add_photos(app)[0]
    for method, path in page_routes(photo_id):
        if method == "POST":
            data = dict(NEW) if "photos" not in path else {"photos": (io.BytesIO(jpeg_bytes()), "a.jpg")}
            response = client.post(path, data=data)
            assert response.status_code == 400, path
            assert "CSRF" in response.get_data(as_text=True)
    assert landmark(app, "chua-mot-cot") is None and landmark(app, SLUG) is not None
    assert photo_rows(app) == [photo_id]


def test_editor_forms_work_with_their_token(csrf_editor):
    app, client = csrf_editor
    token = csrf_from(client.get("/editor/landmarks/new").get_data(as_text=True))
    assert client.post("/editor/landmarks/new", data=dict(NEW, csrf_token=token)).status_code == 303
    token = csrf_from(client.get("/editor/landmarks/chua-mot-cot/photos").get_data(as_text=True))
    response = client.post("/editor/landmarks/chua-mot-cot/photos",
                           data={"csrf_token": token, "photos": [(io.BytesIO(jpeg_bytes()), "a.jpg")]})
    assert response.status_code == 303 and len(photo_rows(app)) == 1
    html = client.get("/editor/landmarks/chua-mot-cot/photos").get_data(as_text=True)
    cover = re.search(r'action="(/editor/landmarks/chua-mot-cot/photos/\d+/cover)"', html)  # the default one has none
    assert cover is None and "The landmark's photo" in html
    second = add_photos(app, 1, slug="chua-mot-cot")[0]
    html = client.get("/editor/landmarks/chua-mot-cot/photos").get_data(as_text=True)
    path = f"/editor/landmarks/chua-mot-cot/photos/{second}/cover"
    assert client.post(path, data={"csrf_token": csrf_from(html)}).status_code == 303
    assert cover_of(app, "chua-mot-cot") == second
