"""The OpenAPI 3.1 document of the JSON API (``GET /api/v1/openapi.json``), built from the code by apispec.

Documenting a route takes two things: YAML after ``---`` in its view's docstring, one operation per HTTP
method (apispec's docstring format), and a marshmallow schema below for each body, named without its
``Schema`` suffix (``schema: Recognition``); ``404: "404"`` names one of the shared error answers (ERRORS).
The builder adds what the code already knows: path parameters from the URL rule, ``401``/``403`` on
operations that need a bearer token, ``429`` on rate-limited endpoints and ``503`` everywhere. For example::

    @bp.get("/api/v1/recognitions/<rec_id>")
    def get_recognition(rec_id):
        '''---
        get:
          summary: A recognition, with its result once done
          responses:
            200: {description: The recognition, content: {application/json: {schema: Recognition}}}
            404: "404"
        '''

tests/webapp/test_openapi.py fails for an /api/ route or method left undocumented
and checks with schemathesis that the routes answer as documented.

Response schemas list every field as required and allow no others: a field added to a serializer must be
documented here too.
"""
from __future__ import annotations

import re

from apispec import APISpec, yaml_utils
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import EXCLUDE, Schema, fields, validate
from werkzeug.routing import Rule

from webapp import editing, models, security
from webapp.request_checks import MAX_ID as MAX_ROW_ID

TITLE = "Vietnamese landmark recognition API"
DOCUMENTED = re.compile(r"^/api/|^/healthz$")
RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
PUBLIC_ID = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,32}$"}  # models.new_public_id
PATH_PARAMETERS = {  # by the URL rules' argument names; others are plain strings (or integers: <int:...>)
    "rec_id": ("A recognition's id (from the upload's answer).", PUBLIC_ID),
    "slug": ("A catalog landmark's slug.", {"type": "string", "pattern": editing.SLUG.pattern, "maxLength": 80}),
    "photo_id": ("A reference photo's id.", {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}),
    "version_id": ("A model version's id.", {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}),
}
ERRORS = {
    400: "Bad request: the message says what to send.",
    401: "No or a bad `Authorization: Bearer <token>` header.",
    403: "Refused: the token's user lacks the role, the X-Delete-Token does not match, or a browser posted from "
         "another site's page.",
    404: "No such id, slug or route.",
    409: "Conflicts with the current state (the message says which).",
    413: "The file is larger than MAX_UPLOAD_MB.",
    415: "Not an image we accept (not an image, an unsupported format, damaged data).",
    429: "Over a rate limit; `Retry-After` says when to try again.",
    503: "The database or the broker is unavailable; nothing was changed: retry.",
}


def string(**kwargs):
    return fields.String(required=True, **kwargs)


def nullable(field_class, **kwargs):
    return field_class(required=True, allow_none=True, **kwargs)


def one_of(choices, null: bool = False):
    return fields.String(required=True, allow_none=null, validate=validate.OneOf(choices))


# --- bodies (webapp/serializers.py, webapp/model_versions.py, webapp/errors.py) --------------------------

class ErrorSchema(Schema):
    error = string(metadata={"description": "A clear message, fit to show."})
    status = fields.Integer(required=True)


class InvalidLandmarkSchema(ErrorSchema):
    errors = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "field → message"})


class LandmarkSchema(Schema):
    slug = string()
    class_key = nullable(fields.String, metadata={"description": "The model's class; null: none."})
    name_vi = string()
    name_en = string()
    province = string()
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)


class SuggestionSchema(Schema):
    key = string(metadata={"description": "The model's key (class key or enrolled slug)."})
    slug = nullable(fields.String, metadata={"description": "null outside the catalog"})
    name_vi = string()
    name_en = string()
    probability = nullable(fields.Float, metadata={"description": "The classifier's; null when matched by photos."})
    url = nullable(fields.String)


class PlaceSchema(Schema):
    slug = string()
    name_vi = string()
    name_en = string()
    province = string()
    similarity = fields.Float(required=True)
    url = string()
    photo_url = nullable(fields.String, metadata={"description": "The landmark's representative photo."})


class NearbySchema(Schema):
    slug = string()
    name_vi = string()
    name_en = string()
    province = string()
    distance_km = fields.Float(required=True, metadata={"description": "From the answered landmark, km."})
    url = string()


class AlternativeSchema(Schema):
    slug = nullable(fields.String)
    class_key = string()
    name_en = string()
    confidence = fields.Float(required=True)


class FeedbackSchema(Schema):
    answer = one_of(models.FEEDBACK)
    landmark = nullable(fields.String, metadata={"description": "The right landmark's slug (a wrong answer)."})
    review_status = one_of(models.REVIEW_STATES, null=True)
    given_at = nullable(fields.DateTime)


class RecognitionSchema(Schema):
    id = string()
    status = one_of(models.STATUSES)
    tier = one_of(("sure", "maybe", "unknown"), null=True)
    landmark = fields.Nested(LandmarkSchema, required=True, allow_none=True,
                             metadata={"description": "A sure answer's landmark; null otherwise."})
    suggestions = fields.List(fields.Nested(SuggestionSchema), required=True)
    places = fields.List(fields.Nested(PlaceSchema), required=True)
    nearby = fields.List(fields.Nested(NearbySchema), required=True,
                         metadata={"description": "A sure answer's catalog landmarks within 25 km, nearest first."})
    taken_at = nullable(fields.String, metadata={"description": "The camera's local time (EXIF), ISO 8601 without a "
                                                                "time zone: the camera records none."})
    position = one_of(models.POSITIONS, null=True)
    distance_km = nullable(fields.Float, metadata={"description": "From where the photo was taken to the "
                                                                  "answered landmark; never coordinates."})
    confidence = nullable(fields.Float)
    alternatives = fields.List(fields.Nested(AlternativeSchema), required=True,
                               metadata={"description": "The model's top five, best first."})
    model_version = nullable(fields.String)
    matched_by = one_of(("classifier", "reference"), null=True)
    created_at = fields.DateTime(required=True)
    finished_at = nullable(fields.DateTime)
    error = nullable(fields.String)
    feedback = fields.Nested(FeedbackSchema, required=True, allow_none=True)


class QueuedPhotoSchema(Schema):
    id = string()
    status_url = string()


class RefusedPhotoSchema(Schema):
    file = string(metadata={"description": "The file's name as sent (escaped on pages)."})
    error = string()
    status = fields.Integer(required=True, metadata={"description": "The status it would have had alone."})


class PhotosAddedSchema(Schema):
    id = string()
    status_url = string()
    recognitions = fields.List(fields.Nested(QueuedPhotoSchema), required=True)
    errors = fields.List(fields.Nested(RefusedPhotoSchema), required=True)


class AlbumCreatedSchema(PhotosAddedSchema):
    delete_token = string(metadata={"description": "Send it as X-Delete-Token to add photos or delete the album."})


class RefusedPhotosSchema(ErrorSchema):
    errors = fields.List(fields.Nested(RefusedPhotoSchema),
                         metadata={"description": "Each refused file's reason; absent when no file was sent."})


class AlbumCountsSchema(Schema):
    total = fields.Integer(required=True)
    queued = fields.Integer(required=True)
    running = fields.Integer(required=True)
    done = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    finished = fields.Integer(required=True)


class AlbumPhotoSchema(RecognitionSchema):
    status_url = string()
    result_url = string()
    photo_url = string()


class StopPhotoSchema(Schema):
    id = string()
    result_url = string()
    photo_url = string()


class StopSchema(Schema):
    number = fields.Integer(required=True, metadata={"description": "In the order the photos were taken."})
    landmark = fields.Nested(LandmarkSchema, required=True)
    url = string()
    recognitions = fields.List(fields.Nested(StopPhotoSchema), required=True)


class AlbumSchema(Schema):
    id = string()
    status_url = string()
    url = string(metadata={"description": "The album's page."})
    created_at = fields.DateTime(required=True)
    counts = fields.Nested(AlbumCountsSchema, required=True)
    finished = fields.Boolean(required=True)
    recognitions = fields.List(fields.Nested(AlbumPhotoSchema), required=True,
                               metadata={"description": "Upload order."})
    visited = fields.List(fields.Nested(StopSchema), required=True)
    provinces = fields.List(fields.String(), required=True)


class UploadSchema(Schema):
    id = string()
    status = one_of(("queued",))
    status_url = string()
    delete_token = string(metadata={"description": "Send it as X-Delete-Token to delete the photo."})


class FeedbackInputSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # other keys are ignored

    answer = one_of(models.FEEDBACK)
    landmark = fields.String(allow_none=True, metadata={"description": "A wrong answer's right landmark "
                                                                       "(slug); null or absent: none of these."})


class FeedbackAnswerSchema(Schema):
    id = string()
    feedback = fields.Nested(FeedbackSchema, required=True)


class PhotoCountsSchema(Schema):
    total = fields.Integer(required=True)
    embedded = fields.Integer(required=True)


class LandmarkDetailSchema(LandmarkSchema):
    description_vi = string()
    description_en = string()
    photos = fields.Nested(PhotoCountsSchema, required=True)


class LandmarkInputSchema(Schema):
    """The editors' fields and their rules (webapp/editing.py); PATCH takes any of them."""

    slug = fields.String(validate=[validate.Length(max=80), validate.Regexp(editing.SLUG)])
    class_key = fields.String(allow_none=True, validate=[validate.Length(max=80), validate.Regexp(editing.CLASS_KEY)])
    name_vi = fields.String(validate=validate.Length(min=1, max=200))
    name_en = fields.String(validate=validate.Length(min=1, max=200))
    province = fields.String(validate=validate.Length(max=120))
    lat = fields.Float(validate=validate.Range(-90, 90))
    lon = fields.Float(validate=validate.Range(-180, 180))
    description_vi = fields.String(validate=validate.Length(max=20_000))
    description_en = fields.String(validate=validate.Length(max=20_000))


class NewLandmarkSchema(LandmarkInputSchema):
    slug = fields.String(required=True, validate=[validate.Length(max=80), validate.Regexp(editing.SLUG)])
    name_vi = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))


class EmbeddingSchema(Schema):
    state = one_of(("pending", "embedded", "error"))
    version = nullable(fields.String)
    embedded_at = nullable(fields.DateTime)
    error = nullable(fields.String)


class ReferencePhotoSchema(Schema):
    id = fields.Integer(required=True)
    landmark = string()
    url = string(metadata={"description": "The photo (JPEG), for a bearer of the editor role."})
    source = one_of(("editor", "correction"))
    format = string()
    sha256 = string()
    embedding = fields.Nested(EmbeddingSchema, required=True)
    created_at = fields.DateTime(required=True)


class ReferencePhotosSchema(Schema):
    photos = fields.List(fields.Nested(ReferencePhotoSchema), required=True)


class MetricsSummarySchema(Schema):
    top1 = nullable(fields.Float)
    top5 = nullable(fields.Float)
    negatives_rejected = nullable(fields.Float)
    accepted_correct = nullable(fields.Float)
    test_photos = nullable(fields.Integer)


class ModelVersionSchema(Schema):
    id = fields.Raw(required=True, metadata={"anyOf": [{"type": "integer"}, {"const": "shipped"}],
                                             "description": "A version's id, or `shipped` (the built-in model)."})
    version = nullable(fields.String)
    arch = nullable(fields.String)
    status = one_of(models.MODEL_STATES)
    is_active = fields.Boolean(required=True)
    shipped = fields.Boolean(required=True)
    classes = fields.List(fields.String(), required=True)
    metrics = fields.Nested(MetricsSummarySchema, required=True)
    progress = fields.Dict(required=True, metadata={"description": "phase, epoch, epochs, history while training"})
    settings = fields.Dict(required=True)
    error = nullable(fields.String)
    started_by = nullable(fields.String, metadata={"description": "The editor's email."})
    created_at = nullable(fields.DateTime)
    finished_at = nullable(fields.DateTime)
    activated_at = nullable(fields.DateTime)


class HealthSchema(Schema):
    status = one_of(("ok",))


# --- the document ---------------------------------------------------------------------------------------

def openapi_document(app: Flask) -> dict:
    """The app's document, built on first use and kept (routes do not change once the app runs)."""
    if "openapi" not in app.extensions:
        app.extensions["openapi"] = build_document(app)
    return app.extensions["openapi"]


def build_document(app: Flask) -> dict:
    spec = APISpec(TITLE, version="1", openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
                   info={"description": "Errors are JSON: `{\"error\": \"<clear message>\", \"status\": <code>}`."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "description": "An editor's or admin's API token "
                                                              "(`flask --app wsgi users token EMAIL`)."})
    spec.components.security_scheme("deleteToken", {"type": "apiKey", "in": "header", "name": "X-Delete-Token",
                                                    "description": "The `delete_token` of the upload's answer."})
    for schema in body_schemas():
        spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
    for status, description in ERRORS.items():
        spec.components.response(str(status), {"description": description,
                                               "content": {"application/json": {"schema": ErrorSchema}}})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if DOCUMENTED.match(rule.rule):
            spec.path(path=openapi_path(rule), operations=operations(app, rule), parameters=path_parameters(rule))
    return spec.to_dict()


def body_schemas() -> list[type[Schema]]:
    """Every schema of this module, in the order written (a nested one before those that use it)."""
    return [value for value in globals().values()
            if isinstance(value, type) and issubclass(value, Schema) and value.__module__ == __name__]


def operations(app: Flask, rule: Rule) -> dict:
    """The rule's documented methods, from its view's docstring, with the answers every such route may give."""
    documented = yaml_utils.load_operations_from_docstring(app.view_functions[rule.endpoint].__doc__ or "")
    found = {}
    assert rule.methods is not None  # Flask gives every rule its methods
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        operation = documented.get(method.lower())
        if operation is None:
            continue  # left out of the document: the coverage test names it
        responses = operation["responses"] = {str(status): answer
                                              for status, answer in operation.get("responses", {}).items()}
        if any("bearer" in scheme for scheme in operation.get("security", [])):
            responses.setdefault("401", "401")
            responses.setdefault("403", "403")
        if rule.endpoint in security.RATE_LIMITED_ENDPOINTS:
            responses.setdefault("429", "429")
        responses.setdefault("503", "503")
        operation["responses"] = dict(sorted(responses.items()))
        found[method.lower()] = operation
    return found


def openapi_path(rule: Rule) -> str:
    return RULE_ARGUMENT.sub(r"{\g<name>}", rule.rule)


def path_parameters(rule: Rule) -> list[dict]:
    parameters = []
    for match in RULE_ARGUMENT.finditer(rule.rule):
        name = match["name"]
        plain = ("", {"type": "integer" if match["converter"] == "int" else "string"})
        description, schema = PATH_PARAMETERS.get(name, plain)
        parameters.append({"name": name, "in": "path", "required": True, "description": description,
                           "schema": schema})
    return parameters
