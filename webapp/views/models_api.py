"""JSON API for model versions: list, inspect, retrain (editors), activate or roll back (admins).

Bearer tokens only (``api_role_required``); CSRF-exempt like the rest of the API. The rules live
in ``webapp.model_versions``. Each view's docstring holds its OpenAPI operation (webapp/openapi.py).
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, url_for

from webapp import model_versions as mv
from webapp.auth import api_role_required
from webapp.errors import error_response

bp = Blueprint("models_api", __name__)


@bp.get("/api/v1/models")
@api_role_required("editor")
def list_models():
    """---
    get:
      summary: Every model version, newest first, then the built-in one (`shipped`)
      tags: [models]
      security: [{bearer: []}]
      responses:
        200:
          description: The versions
          content: {application/json: {schema: {type: array, items: ModelVersion}}}
    """
    return jsonify(mv.listing())


@bp.get("/api/v1/models/shipped", defaults={"version_id": None})
@bp.get("/api/v1/models/<int:version_id>")
@api_role_required("editor")
def get_model(version_id: int | None):
    """---
    get:
      summary: A model version (`shipped` is the built-in one) with its metrics and training progress
      tags: [models]
      security: [{bearer: []}]
      responses:
        200: {description: The version, content: {application/json: {schema: ModelVersion}}}
        404: "404"
    """
    if version_id is None:
        return jsonify(mv.builtin_json(is_active=mv.active_version() is None))
    version = mv.get(version_id)
    if version is None:
        return error_response(404, "no model version with this id")
    return jsonify(mv.version_json(version))


@bp.post("/api/v1/models/train")
@api_role_required("editor")
def train():
    """---
    post:
      summary: Start a retraining (the `training` queue)
      tags: [models]
      security: [{bearer: []}]
      responses:
        202:
          description: A new version in status `training`
          headers:
            Location: {description: The version's URL in this API, schema: {type: string}}
          content: {application/json: {schema: ModelVersion}}
        400: "400"
        409: "409"
    """
    version = mv.start_training(g.api_user)
    location = url_for("models_api.get_model", version_id=version.id)
    return jsonify(mv.version_json(version)), 202, {"Location": location}


@bp.post("/api/v1/models/shipped/activate", defaults={"version_id": None})
@bp.post("/api/v1/models/<int:version_id>/activate")
@api_role_required("admin")
def activate(version_id: int | None):
    """---
    post:
      summary: Make a ready version (or `shipped`) the one workers serve (admins)
      tags: [models]
      security: [{bearer: []}]
      responses:
        200: {description: The version now active, content: {application/json: {schema: ModelVersion}}}
        404: "404"
        409: "409"
    """
    version = None
    if version_id is not None:
        version = mv.get(version_id)
        if version is None:
            return error_response(404, "no model version with this id")
    mv.activate(version)
    if version is None:
        return jsonify(mv.builtin_json(is_active=True))
    return jsonify(mv.version_json(version))
