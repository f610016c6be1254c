"""Visitor pages: the upload form, the result page, landmarks' photos and the language switch."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from flask_babel import gettext as _

from webapp.errors import error_response, wants_json
from webapp.extensions import db
from webapp.feedback import FeedbackError, delete_upload, landmark_choices, record_feedback
from webapp.i18n import current_language
from webapp.models import Landmark, Recognition, ReferencePhoto
from webapp.references import cover_photos, reference_display_path
from webapp.serializers import alternatives, answer, cover_url, status_url
from webapp.uploads import UploadError, accept_upload, display_path, may_delete
from webapp.views.auth import safe_next

bp = Blueprint("pages", __name__)
KEEP_DELETE_TOKENS = 20  # the uploader's latest uploads stay deletable from this browser (cookie size)


@bp.get("/")
def index():
    return render_template("index.html")


@bp.post("/")
def upload():
    try:
        rec = accept_upload(request.files.get("image"))
    except UploadError as err:
        if wants_json():
            return error_response(err.status, err.message)
        return render_template("index.html", error=err.message), err.status
    remember_delete_token(rec.id, rec.delete_token)
    result_url = url_for("pages.result", rec_id=rec.id)
    if wants_json():  # the upload script with its progress bar
        return jsonify(id=rec.id, status=rec.status, status_url=status_url(rec), result_url=result_url), 202
    return redirect(result_url, code=303)


@bp.get("/r/<rec_id>")
def result(rec_id: str):
    rec = db.get_or_404(Recognition, rec_id)
    token = uploader_token(rec)  # only the uploader's browser has it
    # in the fragment: a saved link works in any browser, and the token never reaches a server's log
    delete_url = url_for("pages.confirm_delete", rec_id=rec.id, _anchor=f"token={token}") if token else None
    return render_template(
        "result.html", rec=rec, answer=answer(rec), alternatives=alternatives(rec), status_url=status_url(rec),
        delete_url=delete_url, is_uploader=token is not None,
        feedback_landmarks=landmark_choices(current_language()) if rec.status == "done" else [],
    )


@bp.post("/r/<rec_id>/feedback")
def feedback(rec_id: str):
    """The visitor's answer to "Is this right?" (rules in webapp/feedback.py)."""
    rec = db.get_or_404(Recognition, rec_id)
    try:
        record_feedback(rec, request.form.get("answer"), request.form.get("landmark", ""),
                        uploader=uploader_token(rec) is not None)
    except FeedbackError as err:
        return error_response(err.status, err.message)
    flash(_("Thank you! Your answer helps us improve the recogniser."))
    return redirect(url_for("pages.result", rec_id=rec.id, _anchor="feedback"), code=303)


@bp.get("/r/<rec_id>/delete")
def confirm_delete(rec_id: str):
    """The capability link ``/r/<id>/delete#token=…``: whoever holds the token may delete the upload, after
    confirming (POST, with CSRF). The uploader's browser fills it in from its session, any other browser from
    the fragment (static/js/delete.js). An old link with ``?token=`` moves it to the fragment."""
    rec = db.get_or_404(Recognition, rec_id)
    if "token" in request.args:
        if not may_delete(rec, request.args["token"]):
            abort(403, _("This link cannot delete this photo."))
        return redirect(url_for("pages.confirm_delete", rec_id=rec.id, _anchor=f"token={request.args['token']}"),
                        code=303)
    return render_template("delete.html", rec=rec, token=uploader_token(rec) or "")


@bp.post("/r/<rec_id>/delete")
def delete(rec_id: str):
    rec = db.get_or_404(Recognition, rec_id)
    if not may_delete(rec, request.form.get("token")):
        abort(403, _("This link cannot delete this photo."))
    delete_upload(rec)
    tokens = session.get("delete_tokens", {})
    if rec_id in tokens:
        session["delete_tokens"] = {k: v for k, v in tokens.items() if k != rec_id}
    flash(_("Your photo and its result have been deleted."))
    return redirect(url_for("pages.index"), code=303)


def uploader_token(rec: Recognition) -> str | None:
    """The delete token this browser's session holds for ``rec`` (only its uploader's has one)."""
    token = session.get("delete_tokens", {}).get(rec.id)
    return token if may_delete(rec, token) else None


def remember_delete_token(rec_id: str, token: str) -> None:
    tokens = dict(session.get("delete_tokens", {}), **{rec_id: token})
    session["delete_tokens"] = dict(list(tokens.items())[-KEEP_DELETE_TOKENS:])


@bp.get("/r/<rec_id>/photo")
def photo(rec_id: str):
    rec = db.get_or_404(Recognition, rec_id)
    path = display_path(rec)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=86400)
    response.cache_control.public = False  # a visitor's photo: browsers may keep it, shared caches not
    response.cache_control.private = True
    return response


@bp.get("/landmark-photos/<int:photo_id>")
def landmark_photo(photo_id: int):
    """A landmark's representative photo; no other reference photo is public."""
    photo = db.get_or_404(ReferencePhoto, photo_id)
    cover = cover_photos([photo.landmark]).get(photo.landmark_id)
    path = reference_display_path(photo)
    if cover is None or cover.id != photo.id or not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=86400)


@bp.app_template_global()
def landmark_photo_url(landmark: Landmark) -> str | None:
    """The URL of the landmark's representative photo, or None when it has none."""
    return cover_url(cover_photos([landmark]).get(landmark.id))


@bp.get("/lang/<code>")
def set_language(code: str):
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    session["lang"] = code
    return redirect(safe_next(request.args.get("next")) or url_for("pages.index"))  # only our own pages
