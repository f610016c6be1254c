"""JSON API, version 1 (README.md; the OpenAPI document, from these docstrings: webapp/openapi.py).

CSRF-exempt; errors are JSON too.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from webapp import albums
from webapp.errors import error_response
from webapp.extensions import db
from webapp.feedback import delete_upload, record_feedback
from webapp.models import Album, Landmark, Recognition
from webapp.openapi import openapi_document
from webapp.request_checks import from_another_site
from webapp.serializers import feedback_json, landmark_json, recognition_json, status_url
from webapp.uploads import accept_upload, may_delete

bp = Blueprint("api", __name__)


@bp.post("/api/v1/recognitions")
def create_recognition():
    """Upload a photo: it is stored and queued for the workers.
    ---
    post:
      summary: Upload a photo to recognise
      tags: [recognitions]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [image]
              properties:
                image: {type: string, format: binary, description: "JPEG, PNG, WebP or HEIC"}
      responses:
        202:
          description: Stored and queued; poll `status_url`.
          headers:
            Location: {description: The recognition's status URL, schema: {type: string}}
          content: {application/json: {schema: Upload}}
        400: "400"
        413: "413"
        403: "403"
        415: "415"
    """
    if from_another_site():  # no token protects this post: a browser must come from our own pages
        return error_response(403, "uploads from another site's pages are not accepted; post from a script or "
                                   "from this site")
    rec = accept_upload(request.files.get("image"))
    body = {"id": rec.id, "status": rec.status, "status_url": status_url(rec), "delete_token": rec.delete_token}
    return jsonify(body), 202, {"Location": status_url(rec)}


@bp.get("/api/v1/recognitions/<rec_id>")
def get_recognition(rec_id: str):
    """---
    get:
      summary: A recognition, with its result once done
      tags: [recognitions]
      responses:
        200: {description: The recognition, content: {application/json: {schema: Recognition}}}
        404: "404"
    """
    rec = db.session.get(Recognition, rec_id)
    if rec is None:
        return error_response(404, "no recognition with this id")
    return jsonify(recognition_json(rec))


@bp.delete("/api/v1/recognitions/<rec_id>")
def delete_recognition(rec_id: str):
    """The uploader deletes the photo and its result with the ``delete_token`` of the upload's answer
    (a photo of an album: the album's).
    ---
    delete:
      summary: Delete the photo and its result (the uploader)
      tags: [recognitions]
      security: [{deleteToken: []}]
      responses:
        204: {description: Deleted}
        403: "403"
        404: "404"
    """
    rec = db.session.get(Recognition, rec_id)
    if rec is None:
        return error_response(404, "no recognition with this id")
    if not may_delete(rec, request.headers.get("X-Delete-Token")):
        return error_response(403, "the X-Delete-Token header does not match this recognition")
    delete_upload(rec)
    return "", 204


@bp.post("/api/v1/albums")
def create_album():
    """A trip album from the photos in the multipart field ``images`` (one or more, up to ``ALBUM_MAX_PHOTOS``).

    Each file is checked like a single upload: ``202 {"id", "status_url", "delete_token", "recognitions":
    [{"id", "status_url"}…], "errors": [{"file", "error", "status"}…]}`` with the refused files' reasons
    (the others still accepted), and a ``Location`` header. Every file refused: their common status (or
    400) with the same ``errors`` and no album. Over the client's photo budget (``UPLOAD_PHOTO_LIMIT``):
    the files that fit are accepted and the rest refused with status 429; none fits: ``429``.
    ---
    post:
      summary: Upload a trip album (many photos)
      tags: [albums]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [images]
              properties:
                images: {type: array, items: {type: string, format: binary}, description: "JPEG, PNG, WebP or HEIC"}
      responses:
        202:
          description: The album; each accepted photo is queued, refused ones are listed in `errors`.
          headers:
            Location: {description: The album's status URL, schema: {type: string}}
          content: {application/json: {schema: AlbumCreated}}
        400: {description: "No photo, or every photo refused", content: {application/json: {schema: RefusedPhotos}}}
        403: "403"
        413: {description: "Every photo too large", content: {application/json: {schema: RefusedPhotos}}}
        415: {description: "Every photo unusable", content: {application/json: {schema: RefusedPhotos}}}
    """
    if from_another_site():  # like a single upload: no token protects this post
        return error_response(403, "uploads from another site's pages are not accepted; post from a script or "
                                   "from this site")
    files = albums.photos_sent()
    if not files:
        return error_response(400, "send one or more photos in the multipart field 'images'")
    album, accepted, refused = albums.create_album(files, g.get("photo_budget"))
    if album is None:
        return error_response(albums.refused_status(refused), "no photo could be accepted",
                              errors=[r.json() for r in refused])
    body = {"id": album.id, "status_url": albums.album_url(album), "delete_token": album.delete_token,
            **added_json(accepted, refused)}
    return jsonify(body), 202, {"Location": albums.album_url(album)}


@bp.post("/api/v1/albums/<album_id>/images")
def add_album_images(album_id: str):
    """More photos for an album (multipart ``images``), with its ``delete_token`` in ``X-Delete-Token``.

    ``202 {"id", "status_url", "recognitions": [{"id", "status_url"}…], "errors": [...]}`` as for a new
    album; a file over ``ALBUM_MAX_PHOTOS`` is refused with status 409. Every file refused: their common
    status (or 400) with ``errors``. ``403`` wrong token, ``404`` no such album.
    ---
    post:
      summary: Add photos to an album
      tags: [albums]
      security: [{deleteToken: []}]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [images]
              properties:
                images: {type: array, items: {type: string, format: binary}}
      responses:
        202: {description: The photos added and those refused, content: {application/json: {schema: PhotosAdded}}}
        400: {description: "No photo, or every photo refused", content: {application/json: {schema: RefusedPhotos}}}
        403: "403"
        404: "404"
        409: {description: "The album is full", content: {application/json: {schema: RefusedPhotos}}}
        413: {description: "Every photo too large", content: {application/json: {schema: RefusedPhotos}}}
        415: {description: "Every photo unusable", content: {application/json: {schema: RefusedPhotos}}}
    """
    album = db.session.get(Album, album_id)
    if album is None:
        return error_response(404, "no album with this id")
    if not albums.may_manage(album, request.headers.get("X-Delete-Token")):
        return error_response(403, "the X-Delete-Token header does not match this album")
    files = albums.photos_sent()
    if not files:
        return error_response(400, "send one or more photos in the multipart field 'images'")
    try:
        accepted, refused = albums.add_photos(album_id, files, g.get("photo_budget"))
    except albums.AlbumGone:
        return error_response(404, "no album with this id")
    if not accepted:
        return error_response(albums.refused_status(refused), "no photo could be accepted",
                              errors=[r.json() for r in refused])
    body = {"id": album_id, "status_url": albums.album_url(album), **added_json(accepted, refused)}
    return jsonify(body), 202


def added_json(accepted: list[Recognition], refused: list[albums.Refused]) -> dict:
    return {"recognitions": [{"id": rec.id, "status_url": status_url(rec)} for rec in accepted],
            "errors": [r.json() for r in refused]}


@bp.get("/api/v1/albums/<album_id>")
def get_album(album_id: str):
    """The album: ``{"id", "status_url", "url" (its page), "created_at", "counts": {"total", "queued",
    "running", "done", "failed", "finished"}, "finished", "recognitions": [recognition + "status_url",
    "result_url", "photo_url"] (upload order), "visited": [{"number", "landmark", "url", "recognitions":
    [{"id", "result_url", "photo_url"}]}] (sure answers, numbered in the order the photos were taken),
    "provinces"}``; ``404`` unknown id.
    ---
    get:
      summary: An album with its photos' results and the landmarks visited
      tags: [albums]
      responses:
        200: {description: The album, content: {application/json: {schema: Album}}}
        404: "404"
    """
    album = db.session.get(Album, album_id)
    if album is None:
        return error_response(404, "no album with this id")
    return jsonify(albums.album_json(album))


@bp.delete("/api/v1/albums/<album_id>")
def delete_album(album_id: str):
    """The album, every photo in it and their results, with its ``delete_token`` in ``X-Delete-Token``:
    ``204``; ``403`` wrong token; ``404`` unknown id.
    ---
    delete:
      summary: Delete an album, every photo and result in it
      tags: [albums]
      security: [{deleteToken: []}]
      responses:
        204: {description: Deleted}
        403: "403"
        404: "404"
    """
    album = db.session.get(Album, album_id)
    if album is None:
        return error_response(404, "no album with this id")
    if not albums.may_manage(album, request.headers.get("X-Delete-Token")):
        return error_response(403, "the X-Delete-Token header does not match this album")
    albums.discard_album(album)
    return "", 204


@bp.get("/api/v1/landmarks")
def list_landmarks():
    """---
    get:
      summary: The catalog, sorted by slug
      tags: [landmarks]
      responses:
        200:
          description: Every catalog landmark
          content: {application/json: {schema: {type: array, items: Landmark}}}
    """
    landmarks = db.session.scalars(db.select(Landmark).order_by(Landmark.slug))
    return jsonify([landmark_json(lm) for lm in landmarks])


@bp.post("/api/v1/recognitions/<rec_id>/feedback")
def recognition_feedback(rec_id: str):
    """JSON ``{"answer": "correct"|"wrong", "landmark": slug|null}``; rules in webapp/feedback.py. Naming
    the right landmark needs the uploader's ``X-Delete-Token`` (the correction may keep the photo).

    Only a JSON content type is read (no ``force``): a cross-site form cannot send one without CORS.
    ---
    post:
      summary: Answer "Is this right?" for a finished recognition
      tags: [recognitions]
      requestBody:
        required: true
        content: {application/json: {schema: FeedbackInput}}
      security: [{}, {deleteToken: []}]
      responses:
        200: {description: The stored answer, content: {application/json: {schema: FeedbackAnswer}}}
        400: "400"
        403: {description: "Naming the landmark without the uploader's X-Delete-Token",
              content: {application/json: {schema: Error}}}
        404: "404"
        409: "409"
    """
    rec = db.session.get(Recognition, rec_id)
    if rec is None:
        return error_response(404, "no recognition with this id")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, 'send a JSON object {"answer": "correct"|"wrong", "landmark": slug|null}')
    record_feedback(rec, body.get("answer"), body.get("landmark"),
                    uploader=may_delete(rec, request.headers.get("X-Delete-Token")))
    return jsonify(id=rec.id, feedback=feedback_json(rec))


@bp.get("/healthz")
def healthz():
    """---
    get:
      summary: Liveness (the process is up; /readyz checks the database and the broker)
      tags: [operations]
      responses:
        200: {description: Up, content: {application/json: {schema: Health}}}
    """
    return jsonify(status="ok")


@bp.get("/api/v1/openapi.json")
def openapi_json():
    """---
    get:
      summary: This document (OpenAPI 3.1)
      tags: [operations]
      responses:
        200: {description: The OpenAPI document, content: {application/json: {schema: {type: object}}}}
    """
    return jsonify(openapi_document(current_app))
