"""Editors' review queue of visitors' corrections: accept (the photo becomes a reference photo) or dismiss.

The rules live in webapp/feedback.py; this module only shows the queue and turns its forms into calls.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from webapp.auth import role_required
from webapp.errors import error_response
from webapp.extensions import db
from webapp.feedback import landmark_choices, pending_corrections, photo_kept, review_correction
from webapp.i18n import current_language
from webapp.models import Landmark, Recognition
from webapp.serializers import alternatives
from webapp.storage import display_path

bp = Blueprint("review", __name__, url_prefix="/editor/corrections")


@bp.before_request
@role_required("editor")
def require_editor():
    """Every page here is for editors (and admins) only."""
    return None


@bp.get("")
def queue():
    page = pending_corrections(request.args.get("page", 1, type=int))
    items = [(rec, photo_kept(rec), alternatives(rec)) for rec in page.items]
    return render_template("review/queue.html", page=page, items=items,
                           landmarks=landmark_choices(current_language()))


@bp.get("/<rec_id>/photo")
def photo(rec_id: str):
    """The visitor's photo for editors (whether or not the visitor shared their delete link)."""
    rec = db.get_or_404(Recognition, rec_id)
    path = display_path(rec)
    if not path.is_file():
        abort(404, _("The visitor's photo is no longer stored."))
    response = send_file(path, mimetype="image/jpeg", max_age=0)
    response.cache_control.private = True
    return response


@bp.post("/<rec_id>/accept")
def accept(rec_id: str):
    """Accept the visitor's correction, or with a ``landmark`` slug: accept it as that landmark."""
    rec = db.get_or_404(Recognition, rec_id)
    landmark = None
    slug = request.form.get("landmark", "")
    if slug:
        landmark = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).first()
        if landmark is None:
            return error_response(400, _("There is no landmark “%(slug)s” in our catalog.", slug=slug[:80]))
    photo = review_correction(rec, current_user, accept=True, landmark=landmark)
    if photo is not None:
        flash(_("Accepted: the photo is now a reference photo of %(name)s.",
                name=photo.landmark.name(current_language())))
    else:
        flash(_("Accepted: recorded that the photo shows none of our landmarks; no reference photo was added."))
    return back_to_queue()


@bp.post("/<rec_id>/dismiss")
def dismiss(rec_id: str):
    rec = db.get_or_404(Recognition, rec_id)
    review_correction(rec, current_user, accept=False)
    flash(_("Dismissed: the correction was recorded and nothing was added."))
    return back_to_queue()


def back_to_queue():
    return redirect(url_for("review.queue", page=request.form.get("page", 1, type=int)), code=303)
