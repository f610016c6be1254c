"""Editors' JSON API: landmarks and their reference photos (bearer tokens with the editor role).

CSRF-exempt like the public API, which is why ``api_role_required`` accepts only
``Authorization: Bearer`` tokens, never the session cookie. The field rules are
``webapp.editing``'s, shared with the editor pages. Public reads stay in ``webapp/views/api.py``.
Each view's docstring holds its OpenAPI operation (webapp/openapi.py).
"""
from __future__ import annotations

from flask import Blueprint, abort, g, jsonify, request, send_file, url_for

from webapp.auth import api_role_required
from webapp.editing import (
    LandmarkInvalid,
    allow_several_photos,
    delete_landmark,
    save_landmark,
    upload_photos,
    validate_landmark,
)
from webapp.errors import error_response
from webapp.extensions import db
from webapp.models import Landmark, ReferencePhoto
from webapp.references import remove_reference_photo
from webapp.serializers import landmark_detail_json, reference_photo_json
from webapp.storage import reference_display_path

bp = Blueprint("editor_api", __name__, url_prefix="/api/v1/landmarks")


def find_landmark(slug: str) -> Landmark:
    landmark = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).first()
    if landmark is None:
        abort(404, f"no landmark with slug {slug!r}")  # JSON, like every /api/ error
    return landmark


def find_photo(landmark: Landmark, photo_id: int) -> ReferencePhoto:
    photo = db.session.get(ReferencePhoto, photo_id)
    if photo is None or photo.landmark_id != landmark.id:
        abort(404, f"landmark {landmark.slug!r} has no reference photo {photo_id}")
    return photo


def json_object():
    """The request's JSON object, or an error response (400)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return None, error_response(400, "send a JSON object with Content-Type: application/json")
    return data, None


def invalid(err: LandmarkInvalid):
    """409 when the only problem is a slug or class key already taken, else 422; per-field messages."""
    status = 409 if err.conflict else 422
    message = "already in use" if err.conflict else "some fields are invalid"
    return jsonify(error=f"{message}: {err}", status=status, errors=err.errors), status


@bp.post("")
@api_role_required("editor")
def create_landmark():
    """---
    post:
      summary: Add a landmark to the catalog
      tags: [editors]
      security: [{bearer: []}]
      requestBody:
        required: true
        content: {application/json: {schema: NewLandmark}}
      responses:
        201:
          description: Created
          headers:
            Location: {description: The landmark's URL in this API, schema: {type: string}}
          content: {application/json: {schema: LandmarkDetail}}
        400: "400"
        409: {description: The slug or class key is taken, content: {application/json: {schema: InvalidLandmark}}}
        422: {description: Some fields are invalid, content: {application/json: {schema: InvalidLandmark}}}
    """
    data, problem = json_object()
    if problem:
        return problem
    try:
        landmark = save_landmark(validate_landmark(data))
    except LandmarkInvalid as err:
        return invalid(err)
    location = url_for("editor_api.get_landmark", slug=landmark.slug)
    return jsonify(landmark_detail_json(landmark)), 201, {"Location": location}


@bp.get("/<slug>")
@api_role_required("editor")
def get_landmark(slug: str):
    """---
    get:
      summary: A landmark with its descriptions and reference-photo counts
      tags: [editors]
      security: [{bearer: []}]
      responses:
        200: {description: The landmark, content: {application/json: {schema: LandmarkDetail}}}
        404: "404"
    """
    return jsonify(landmark_detail_json(find_landmark(slug)))


@bp.patch("/<slug>")
@api_role_required("editor")
def update_landmark(slug: str):
    """---
    patch:
      summary: Change some of a landmark's fields (the same rules as creating one)
      tags: [editors]
      security: [{bearer: []}]
      requestBody:
        required: true
        content: {application/json: {schema: LandmarkInput}}
      responses:
        200: {description: The changed landmark, content: {application/json: {schema: LandmarkDetail}}}
        400: "400"
        404: "404"
        409: {description: The slug or class key is taken, content: {application/json: {schema: InvalidLandmark}}}
        422: {description: Some fields are invalid, content: {application/json: {schema: InvalidLandmark}}}
    """
    landmark = find_landmark(slug)
    data, problem = json_object()
    if problem:
        return problem
    try:
        landmark = save_landmark(validate_landmark(data, landmark), landmark)
    except LandmarkInvalid as err:
        return invalid(err)
    return jsonify(landmark_detail_json(landmark))


@bp.delete("/<slug>")
@api_role_required("editor")
def remove_landmark(slug: str):
    """---
    delete:
      summary: Delete a landmark and its reference photos
      tags: [editors]
      security: [{bearer: []}]
      responses:
        204: {description: Deleted}
        404: "404"
    """
    delete_landmark(find_landmark(slug))
    return "", 204


@bp.get("/<slug>/photos")
@api_role_required("editor")
def list_photos(slug: str):
    """---
    get:
      summary: A landmark's reference photos with their embedding state
      tags: [editors]
      security: [{bearer: []}]
      responses:
        200: {description: "The photos, oldest first", content: {application/json: {schema: ReferencePhotos}}}
        404: "404"
    """
    landmark = find_landmark(slug)
    photos = sorted(landmark.reference_photos, key=lambda p: p.id)
    return jsonify(photos=[reference_photo_json(p) for p in photos])


@bp.post("/<slug>/photos")
@api_role_required("editor")
def add_photos(slug: str):
    """Multipart field ``photos``, one or more files: all stored (201) or none (the first bad file named).
    ---
    post:
      summary: Add reference photos (all or none)
      tags: [editors]
      security: [{bearer: []}]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [photos]
              properties:
                photos: {type: array, items: {type: string, format: binary}, minItems: 1, maxItems: 20}
      responses:
        201: {description: Stored; embedded by a worker soon, content: {application/json: {schema: ReferencePhotos}}}
        400: "400"
        404: "404"
        413: "413"
        415: "415"
    """
    landmark = find_landmark(slug)
    allow_several_photos()  # before the body is read
    photos = upload_photos(landmark, request.files.getlist("photos"), g.api_user)
    return jsonify(photos=[reference_photo_json(p) for p in photos]), 201


@bp.get("/<slug>/photos/<int:photo_id>")
@api_role_required("editor")
def photo_file(slug: str, photo_id: int):
    """---
    get:
      summary: A reference photo's file
      tags: [editors]
      security: [{bearer: []}]
      responses:
        200: {description: The photo, content: {image/jpeg: {schema: {type: string, format: binary}}}}
        404: "404"
    """
    path = reference_display_path(find_photo(find_landmark(slug), photo_id))
    if not path.is_file():
        return error_response(404, "the photo's file is missing")
    response = send_file(path, mimetype="image/jpeg", max_age=0)
    response.cache_control.private = True
    return response


@bp.delete("/<slug>/photos/<int:photo_id>")
@api_role_required("editor")
def remove_photo(slug: str, photo_id: int):
    """---
    delete:
      summary: Remove a reference photo
      tags: [editors]
      security: [{bearer: []}]
      responses:
        204: {description: Removed}
        404: "404"
    """
    remove_reference_photo(find_photo(find_landmark(slug), photo_id))
    return "", 204
