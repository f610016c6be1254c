"""Editor pages for model versions: the side-by-side table, one version's report and plots, live
training progress; "Retrain" for editors, "Activate" / "Roll back" for admins.

The rules live in ``webapp.model_versions``. The page's progress script polls ``status`` here
(the session's user), not the bearer-token API.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from webapp import model_versions as mv
from webapp.auth import role_required

bp = Blueprint("models", __name__)


def _version_or_404(version_id: int | None):
    """The row, or None for the built-in bundle ("shipped"); 404 for an unknown id."""
    if version_id is None:
        return None
    version = mv.get(version_id)
    if version is None:
        abort(404, _("There is no model version with this number."))
    return version


@bp.get("/editor/models")
@role_required("editor")
def index():
    versions = mv.all_versions()
    builtin = mv.builtin_json(is_active=not any(v.is_active for v in versions))
    return render_template(
        "models/index.html", versions=versions, builtin=builtin, summary=mv.metrics_summary,
        training=mv.running_training(), may_activate=current_user.has_role("admin"),
    )


@bp.get("/editor/models/shipped", defaults={"version_id": None})
@bp.get("/editor/models/<int:version_id>")
@role_required("editor")
def detail(version_id: int | None):
    version = _version_or_404(version_id)
    info = mv.version_json(version) if version else mv.builtin_json(is_active=mv.active_version() is None)
    return render_template(
        "models/detail.html", version=version, info=info, report=mv.report_text(version), plots=mv.plots(version),
        may_activate=current_user.has_role("admin"),
    )


@bp.get("/editor/models/<int:version_id>/status")
@role_required("editor")
def status(version_id: int):
    return jsonify(mv.version_json(_version_or_404(version_id)))


@bp.get("/editor/models/shipped/plots/<name>", defaults={"version_id": None})
@bp.get("/editor/models/<int:version_id>/plots/<name>")
@role_required("editor")
def plot(version_id: int | None, name: str):
    path = mv.plot_file(_version_or_404(version_id), name)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="image/png", max_age=300)
    response.cache_control.public = False
    response.cache_control.private = True
    return response


@bp.post("/editor/models/train")
@role_required("editor")
def train():
    try:
        version = mv.start_training(current_user)
    except mv.ModelVersionError as err:
        flash(_("Retraining was not started: %(reason)s", reason=err.message))
        return redirect(url_for("models.index"), code=303)
    flash(_("Retraining started. This page shows its progress."))
    return redirect(url_for("models.detail", version_id=version.id), code=303)


@bp.post("/editor/models/shipped/activate", defaults={"version_id": None})
@bp.post("/editor/models/<int:version_id>/activate")
@role_required("admin")
def activate(version_id: int | None):
    version = _version_or_404(version_id)
    try:
        mv.activate(version)
    except mv.ModelVersionError as err:
        flash(_("Not activated: %(reason)s", reason=err.message))
        return redirect(url_for("models.index"), code=303)
    if version is None:
        flash(_("The shipped model serves again. Reference photos are being embedded again."))
    else:
        flash(_("Version %(id)s is active. Workers switch to it with their next photo.", id=version.id))
    return redirect(url_for("models.index"), code=303)
