"""Editor pages: the landmark catalog (list, search, create, edit, delete) and its reference photos.

Every page needs the editor role (admins too); the rules for landmark fields live in
``webapp.editing``, shared with the editors' JSON API.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func
from wtforms import StringField, TextAreaField

from webapp.auth import role_required
from webapp.editing import (
    FIELDS,
    LandmarkInvalid,
    allow_several_photos,
    delete_landmark,
    embedding_state,
    save_landmark,
    upload_photos,
    validate_landmark,
)
from webapp.extensions import db
from webapp.models import Landmark, ReferencePhoto
from webapp.references import COVER_SOURCES, cover_photos, remove_reference_photo, set_cover_photo
from webapp.storage import reference_display_path
from webapp.uploads import UploadError
from webapp.views.catalog import search_landmarks

bp = Blueprint("editor", __name__, url_prefix="/editor")


class LandmarkForm(FlaskForm):
    """Fields only: the rules are ``webapp.editing.validate_landmark``'s."""

    slug = StringField(_l("Slug (in the address)"), description=_l("e.g. chua-mot-cot"))
    class_key = StringField(_l("Model class"), description=_l("Optional: the recogniser's class, e.g. Chua_Mot_Cot"))
    name_vi = StringField(_l("Name in Vietnamese"))
    name_en = StringField(_l("Name in English"))
    province = StringField(_l("Province"))
    lat = StringField(_l("Latitude"), description=_l("-90 to 90, e.g. 21.0359"), render_kw={"inputmode": "decimal"})
    lon = StringField(_l("Longitude"), description=_l("-180 to 180, e.g. 105.8336"), render_kw={"inputmode": "decimal"})
    description_vi = TextAreaField(_l("Description in Vietnamese"))
    description_en = TextAreaField(_l("Description in English"))


@bp.before_request
@role_required("editor")
def require_editor():
    """Every page here is for editors (and admins) only."""
    return None


@bp.url_value_preprocessor
def photo_uploads_may_be_large(endpoint: str | None, _values) -> None:
    """Before CSRF protection reads the body: a signed-in editor's upload may carry several photos."""
    if endpoint == "editor.photos" and request.method == "POST" and current_user.is_authenticated \
            and current_user.has_role("editor"):
        allow_several_photos()


@bp.app_template_global()
def has_endpoint(name: str) -> bool:
    """Whether a page exists, so the editor menu links only to parts that are installed."""
    return name in current_app.view_functions


def photo_counts() -> dict[int, tuple[int, int]]:
    """landmark id → (reference photos, how many of them have an embedding)."""
    rows = db.session.execute(
        db.select(ReferencePhoto.landmark_id, func.count(ReferencePhoto.id), func.count(ReferencePhoto.embedding))
        .group_by(ReferencePhoto.landmark_id)
    )
    return {landmark_id: (total, embedded) for landmark_id, total, embedded in rows}


def landmark_or_404(slug: str) -> Landmark:
    return db.first_or_404(db.select(Landmark).filter_by(slug=slug))


@bp.get("/landmarks")
def landmarks():
    query = request.args.get("q", "").strip()
    return render_template("editor/landmarks.html", landmarks=search_landmarks(query), query=query,
                           counts=photo_counts())


@bp.route("/landmarks/new", methods=["GET", "POST"])
def create():
    return edit_form(None)


@bp.route("/landmarks/<slug>/edit", methods=["GET", "POST"])
def edit(slug: str):
    return edit_form(landmark_or_404(slug))


def edit_form(landmark: Landmark | None):
    form = LandmarkForm(obj=landmark)
    if form.validate_on_submit():
        try:
            values = validate_landmark({field: form[field].data for field in FIELDS}, landmark)
        except LandmarkInvalid as err:
            for field, message in err.errors.items():
                form[field].errors = [message]
        else:
            created = landmark is None
            landmark = save_landmark(values, landmark)
            flash(_("%(name)s was added.", name=landmark.name_en) if created
                  else _("%(name)s was saved.", name=landmark.name_en))
            return redirect(url_for("editor.landmarks", q=landmark.slug), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("editor/landmark_form.html", form=form, landmark=landmark), status


@bp.route("/landmarks/<slug>/delete", methods=["GET", "POST"])
def delete(slug: str):
    landmark = landmark_or_404(slug)
    if request.method == "POST":
        name = landmark.name_en
        delete_landmark(landmark)
        flash(_("%(name)s and its reference photos were deleted.", name=name))
        return redirect(url_for("editor.landmarks"), code=303)
    return render_template("editor/landmark_delete.html", landmark=landmark,
                           photos=len(landmark.reference_photos))


@bp.route("/landmarks/<slug>/photos", methods=["GET", "POST"])
def photos(slug: str):
    landmark = landmark_or_404(slug)
    error, status = None, 200
    if request.method == "POST":
        try:
            added = upload_photos(landmark, request.files.getlist("photos"), current_user)
        except UploadError as err:
            error, status = err.message, err.status
        else:
            flash(ngettext("%(num)d photo added; its embedding is being computed.",
                           "%(num)d photos added; their embeddings are being computed.", len(added)))
            return redirect(url_for("editor.photos", slug=landmark.slug), code=303)
    listed = sorted(landmark.reference_photos, key=lambda p: p.id)
    return render_template("editor/photos.html", landmark=landmark, photos=listed, error=error,
                           state=embedding_state, cover=cover_photos([landmark]).get(landmark.id),
                           may_cover=COVER_SOURCES), status


def photo_of(landmark: Landmark, photo_id: int) -> ReferencePhoto:
    photo = db.session.get(ReferencePhoto, photo_id)
    if photo is None or photo.landmark_id != landmark.id:
        abort(404)
    return photo


@bp.route("/landmarks/<slug>/photos/<int:photo_id>/remove", methods=["GET", "POST"])
def remove_photo(slug: str, photo_id: int):
    landmark = landmark_or_404(slug)
    photo = photo_of(landmark, photo_id)
    if request.method == "POST":
        remove_reference_photo(photo)
        flash(_("The photo was removed."))
        return redirect(url_for("editor.photos", slug=landmark.slug), code=303)
    return render_template("editor/photo_remove.html", landmark=landmark, photo=photo)


@bp.post("/landmarks/<slug>/photos/<int:photo_id>/cover")
def cover_photo(slug: str, photo_id: int):
    """The photo that represents the landmark on public pages (the landmark page, places that look like this)."""
    landmark = landmark_or_404(slug)
    photo = photo_of(landmark, photo_id)
    if photo.source not in COVER_SOURCES:
        abort(400, _("A photo from a visitor's correction is not shown publicly."))
    set_cover_photo(landmark, photo)
    flash(_("This photo now represents %(name)s.", name=landmark.name_en))
    return redirect(url_for("editor.photos", slug=landmark.slug), code=303)


@bp.get("/photos/<int:photo_id>")
def photo_file(photo_id: int):
    path = reference_display_path(db.get_or_404(ReferencePhoto, photo_id))
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=3600)
    response.cache_control.public = False  # behind a sign-in: never in shared caches
    response.cache_control.private = True
    return response
