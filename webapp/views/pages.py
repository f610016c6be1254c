"""Visitor pages: the upload form, the result page and the language switch."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from webapp.errors import error_response, wants_json
from webapp.extensions import db
from webapp.models import Recognition
from webapp.serializers import alternatives, status_url
from webapp.uploads import UploadError, accept_upload, display_path

bp = Blueprint("pages", __name__)


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
    result_url = url_for("pages.result", rec_id=rec.id)
    if wants_json():  # the upload script with its progress bar
        return jsonify(id=rec.id, status=rec.status, status_url=status_url(rec), result_url=result_url), 202
    return redirect(result_url, code=303)


@bp.get("/r/<rec_id>")
def result(rec_id: str):
    rec = db.get_or_404(Recognition, rec_id)
    return render_template(
        "result.html", rec=rec, alternatives=alternatives(rec), status_url=status_url(rec)
    )


@bp.get("/r/<rec_id>/photo")
def photo(rec_id: str):
    rec = db.get_or_404(Recognition, rec_id)
    path = display_path(rec)
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=86400)


@bp.get("/lang/<code>")
def set_language(code: str):
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    session["lang"] = code
    target = request.args.get("next", "")
    if not target.startswith("/") or target.startswith("//"):  # only our own pages
        target = url_for("pages.index")
    return redirect(target)
