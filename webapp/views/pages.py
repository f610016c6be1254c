"""Visitor pages: the upload form, the result page, landmarks' photos and the language switch."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _

from webapp import albums
from webapp.errors import error_response, wants_json
from webapp.extensions import db
from webapp.feedback import delete_upload, landmark_choices, record_feedback
from webapp.i18n import current_language
from webapp.models import Album, Landmark, Recognition, ReferencePhoto
from webapp.references import cover_photos
from webapp.security import safe_next
from webapp.serializers import alternatives, answer, cover_url, status_url
from webapp.storage import display_path, reference_display_path
from webapp.uploads import UploadError, accept_upload, may_delete

bp = Blueprint("pages", __name__)
KEEP_DELETE_TOKENS = 20  # the uploader's latest uploads stay deletable from this browser (cookie size)
KEEP_ALBUM_TOKENS = 10  # and their latest albums
SHOW_REFUSED = 5  # refused files of a form post named one by one on the album page


@bp.get("/")
def index():
    return render_template("index.html")


@bp.post("/")
def upload():
    """The home page's form: one photo → its result page; several (a form sent without JavaScript) → an album.
    The upload script sends one photo here, and several through ``create_album`` / ``add_album_photos``."""
    files = albums.photos_sent()
    if len(files) > 1:
        return album_created(files)
    try:
        rec = accept_upload(files[0] if files else None)
    except UploadError as err:
        if wants_json():
            return error_response(err.status, err.message)
        return render_template("index.html", error=err.message), err.status
    assert rec.delete_token is not None  # accept_upload sets it on a single upload
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
    record_feedback(rec, request.form.get("answer"), request.form.get("landmark", ""),
                    uploader=uploader_token(rec) is not None)
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
    album_id = rec.album_id
    delete_upload(rec)
    forget_token("delete_tokens", rec_id)
    flash(_("Your photo and its result have been deleted."))
    return redirect(url_for("pages.album", album_id=album_id) if album_id else url_for("pages.index"), code=303)


def uploader_token(rec: Recognition) -> str | None:
    """The delete token this browser's session holds for ``rec``: its own, or its album's (only the
    uploader's browser has one)."""
    token = session.get("delete_tokens", {}).get(rec.id) or (
        session.get("album_tokens", {}).get(rec.album_id) if rec.album_id else None)
    return token if may_delete(rec, token) else None


def remember_delete_token(rec_id: str, token: str) -> None:
    tokens = dict(session.get("delete_tokens", {}), **{rec_id: token})
    session["delete_tokens"] = dict(list(tokens.items())[-KEEP_DELETE_TOKENS:])


def remember_album_token(album_id: str, token: str) -> None:
    tokens = dict(session.get("album_tokens", {}), **{album_id: token})
    session["album_tokens"] = dict(list(tokens.items())[-KEEP_ALBUM_TOKENS:])


def forget_token(kind: str, key: str) -> None:
    tokens = session.get(kind, {})
    if key in tokens:
        session[kind] = {k: v for k, v in tokens.items() if k != key}


# --- trip albums (webapp/albums.py) ------------------------------------------------------------------

@bp.post("/a")
def create_album():
    """The upload script's first photo when the visitor chose several: a new album (JSON, like ``upload``)."""
    files = albums.photos_sent()
    if not files:
        return error_response(400, _("No photo was sent; choose an image file."))
    return album_created(files)


def album_created(files):
    album, accepted, refused = albums.create_album(files, g.get("photo_budget"))
    if album is None:
        return photos_refused(refused)
    assert album.delete_token is not None  # create_album sets it on the album it returns
    remember_album_token(album.id, album.delete_token)  # the uploader's browser keeps it, like a photo's
    return photos_added(album.id, accepted, refused)


@bp.post("/a/<album_id>/photos")
def add_album_photos(album_id: str):
    """More photos for the visitor's own album: the upload script sends each one here (this browser holds
    the album's token in its session)."""
    album = db.get_or_404(Album, album_id)
    if not albums.may_manage(album, session.get("album_tokens", {}).get(album.id)):
        abort(403, _("Only the browser that made this album can add photos to it."))
    files = albums.photos_sent()
    if not files:
        return error_response(400, _("No photo was sent; choose an image file."))
    try:
        accepted, refused = albums.add_photos(album_id, files, g.get("photo_budget"))
    except albums.AlbumGone:
        abort(404)
    if not accepted:
        return photos_refused(refused)
    return photos_added(album_id, accepted, refused)


def photos_added(album_id: str, accepted: list[Recognition], refused: list[albums.Refused]):
    album_page = url_for("pages.album", album_id=album_id)
    if wants_json():  # the upload script
        return jsonify(id=album_id, url=album_page, add_url=url_for("pages.add_album_photos", album_id=album_id),
                       status_url=url_for("api.get_album", album_id=album_id),
                       recognitions=[{"id": rec.id, "status_url": status_url(rec)} for rec in accepted],
                       errors=[r.json() for r in refused]), 202
    for r in refused[:SHOW_REFUSED]:  # flashed messages live in the session cookie: a few, then a count
        flash(_("Not added: %(file)s — %(error)s", file=r.file, error=r.error))
    if len(refused) > SHOW_REFUSED:
        flash(_("%(count)d more files could not be added.", count=len(refused) - SHOW_REFUSED))
    return redirect(album_page, code=303)


def photos_refused(refused: list[albums.Refused]):
    status = albums.refused_status(refused)
    if len(refused) == 1:
        message = refused[0].error
    else:
        message = _("None of these photos could be used.")
    if wants_json():
        return error_response(status, message, errors=[r.json() for r in refused])
    return render_template("index.html", error=message, refused=refused if len(refused) > 1 else []), status


@bp.get("/a/<album_id>")
def album(album_id: str):
    """The album page: progress, the grid of photos with their answers, the trip map and its summary."""
    album = db.get_or_404(Album, album_id)
    recs = albums.recognitions(album)
    stops = albums.trip(recs)
    token = session.get("album_tokens", {}).get(album.id)
    # in the fragment, as for a photo: the token never reaches a server's log
    delete_url = url_for("pages.confirm_delete_album", album_id=album.id, _anchor=f"token={token}") if token else None
    return render_template("album.html", album=album, recs=recs, answers={rec.id: answer(rec) for rec in recs},
                           stops=stops, pins=trip_pins(stops), provinces=albums.provinces(stops),
                           stop_numbers={rec.id: stop.number for stop in stops for rec in stop.recognitions},
                           counts=albums.counts(recs), status_url=albums.album_url(album), delete_url=delete_url)


def trip_pins(stops: list[albums.Stop]) -> list[dict]:
    """The trip map's pins: numbered, each leading to its entry under the map (its photos and landmark page)."""
    lang = current_language()
    pins = []
    for stop in stops:
        name = stop.landmark.name(lang)
        photos = [{"label": _("Photo %(number)d", number=i), "url": url_for("pages.result", rec_id=rec.id)}
                  for i, rec in enumerate(stop.recognitions, 1)]
        pins.append({"lat": stop.landmark.lat, "lon": stop.landmark.lon, "number": stop.number,
                     "label": f"{stop.number}. {name}", "url": f"#stop-{stop.number}",
                     "links": [{"label": name, "url": url_for("catalog.detail", slug=stop.landmark.slug)}, *photos]})
    return pins


@bp.get("/a/<album_id>/delete")
def confirm_delete_album(album_id: str):
    """The album's capability link ``/a/<id>/delete#token=…``: whoever holds its token may delete it, after
    confirming (POST, with CSRF); filled in from the session or the fragment like a photo's (``confirm_delete``)."""
    album = db.get_or_404(Album, album_id)
    if "token" in request.args:
        if not albums.may_manage(album, request.args["token"]):
            abort(403, _("This link cannot delete this album."))
        return redirect(url_for("pages.confirm_delete_album", album_id=album.id,
                                _anchor=f"token={request.args['token']}"), code=303)
    token = session.get("album_tokens", {}).get(album.id, "")
    token = token if albums.may_manage(album, token) else ""
    recs = albums.recognitions(album)
    return render_template("album_delete.html", album=album, recs=recs, token=token,
                           kept_copies=any(rec.review_status == "accepted" for rec in recs))


@bp.post("/a/<album_id>/delete")
def delete_album(album_id: str):
    album = db.get_or_404(Album, album_id)
    if not albums.may_manage(album, request.form.get("token")):
        abort(403, _("This link cannot delete this album."))
    albums.discard_album(album)
    forget_token("album_tokens", album_id)
    flash(_("Your album, its photos and their results have been deleted."))
    return redirect(url_for("pages.index"), code=303)


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
    cover = cover_photos([photo.landmark]).get(photo.landmark_id)  # type: ignore[list-item]  # a Landmark
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
