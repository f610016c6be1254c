"""Editors' changes to the catalog: the one set of landmark rules, shared by the editor pages and the JSON API.

``validate_landmark`` checks raw values (form strings or JSON values) and returns clean ones or raises
``LandmarkInvalid`` with one message per field; ``save_landmark`` and ``delete_landmark`` write them.
``upload_photos`` is the one entry for editors' reference photos (pages and API).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

from flask import current_app, request
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from webapp.extensions import db
from webapp.models import Landmark, ReferencePhoto, User
from webapp.references import add_reference_photos
from webapp.storage import reference_display_path, reference_path
from webapp.uploads import UploadError

FIELDS = ("slug", "class_key", "name_vi", "name_en", "province", "lat", "lon", "description_vi", "description_en")
REQUIRED = ("slug", "name_vi", "name_en", "lat", "lon")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CLASS_KEY = re.compile(r"^[A-Za-z0-9_]+$")  # a folder name of the training data, e.g. Vinh_Ha_Long
MAX_LENGTH = {"slug": 80, "class_key": 80, "name_vi": 200, "name_en": 200, "province": 120,
              "description_vi": 20_000, "description_en": 20_000}
MAX_PHOTOS_PER_UPLOAD = 20


class LandmarkInvalid(ValueError):
    """``errors``: field → message. ``conflict``: every error is a slug or class key already in use."""

    def __init__(self, errors: dict[str, str], conflict: bool = False):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors
        self.conflict = conflict


def validate_landmark(data: Mapping[str, object], landmark: Landmark | None = None) -> dict:
    """Clean values for a new landmark (``landmark`` None: all required fields must be given) or for
    changes to ``landmark`` (only the fields present in ``data``)."""
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    for field in data:
        if field not in FIELDS:
            errors[field] = _("Unknown field.")
    for field in FIELDS:
        if field not in data and (landmark is not None or field not in REQUIRED):
            continue
        try:
            values[field] = _clean(field, data.get(field))
        except ValueError as err:
            errors[field] = str(err)
    conflicts = _in_use(values, landmark)
    for field in conflicts:
        errors.setdefault(field, conflicts[field])
    if errors:
        raise LandmarkInvalid(errors, conflict=bool(conflicts) and set(errors) <= set(conflicts))
    return values


def save_landmark(values: dict, landmark: Landmark | None = None) -> Landmark:
    """Create a landmark from validated ``values``, or apply them to ``landmark``; commits."""
    if landmark is None:
        landmark = Landmark(**{"province": "", "description_vi": "", "description_en": "", **values})
        db.session.add(landmark)
    else:
        for field, value in values.items():
            setattr(landmark, field, value)
    db.session.commit()
    return landmark


def delete_landmark(landmark: Landmark) -> None:
    """Delete the landmark, its reference photos and their files (recognitions keep their label, lose the link)."""
    photos = list(landmark.reference_photos)
    paths = [path for photo in photos for path in (reference_path(photo), reference_display_path(photo))]
    for photo in photos:
        db.session.delete(photo)
    db.session.delete(landmark)
    db.session.commit()
    for path in paths:  # after the commit: a failed delete leaves no row without its file
        path.unlink(missing_ok=True)


def upload_photos(landmark: Landmark, files: list[FileStorage], user: User | None) -> list[ReferencePhoto]:
    """Store several reference photos at once: all or none (``UploadError`` names the bad file)."""
    files = [file for file in files if file and file.filename]  # a form with no file chosen sends one empty part
    if not files:
        raise UploadError(400, _("No photo was sent; choose one or more image files."))
    if len(files) > MAX_PHOTOS_PER_UPLOAD:
        raise UploadError(400, _("At most %(num)d photos at once, please.", num=MAX_PHOTOS_PER_UPLOAD))
    return add_reference_photos(landmark, files, user)


def allow_several_photos() -> None:
    """Let this request carry up to MAX_PHOTOS_PER_UPLOAD photos (each still limited to MAX_UPLOAD_MB)."""
    request.max_content_length = (current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + 64 * 1024) * MAX_PHOTOS_PER_UPLOAD


def embedding_state(photo: ReferencePhoto) -> str:
    """"embedded", "error" (no embedding could be computed) or "pending" (a worker has not got to it yet)."""
    if photo.embedding is not None:
        return "embedded"
    return "error" if photo.error else "pending"


def _clean(field: str, value: object):
    if field in ("lat", "lon"):
        return _coordinate(value, 90.0 if field == "lat" else 180.0)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(_("Must be text."))
    value = value.strip()
    if not value and field in REQUIRED:
        raise ValueError(_("This field is required."))
    if len(value) > MAX_LENGTH[field]:
        raise ValueError(_("At most %(num)d characters.", num=MAX_LENGTH[field]))
    if field == "slug" and not SLUG.match(value):
        raise ValueError(_("Use lower-case letters, digits and single hyphens, e.g. chua-mot-cot."))
    if field == "class_key":
        if not value:
            return None
        if not CLASS_KEY.match(value):
            raise ValueError(_("Use letters, digits and underscores only, e.g. Chua_Mot_Cot."))
    return value


def _coordinate(value: object, limit: float) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(_("This field is required."))
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))  # Vietnamese writes 21,0288
        except ValueError:
            raise ValueError(_("Must be a number.")) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) <= limit else math.inf  # float() of a huge int overflows
    else:
        raise ValueError(_("Must be a number."))
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise ValueError(_("Must be between %(low)s and %(high)s.", low=-int(limit), high=int(limit)))
    return number


def _in_use(values: dict, landmark: Landmark | None) -> dict[str, str]:
    """Unique fields whose new value another landmark already has."""
    taken = {}
    for field in ("slug", "class_key"):
        value = values.get(field)
        if value is None:
            continue
        other = db.session.scalars(db.select(Landmark).where(getattr(Landmark, field) == value)).first()
        if other is not None and other is not landmark:
            taken[field] = _("Another landmark (%(slug)s) already uses this.", slug=other.slug)
    return taken
