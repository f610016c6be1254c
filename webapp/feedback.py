"""Visitors' answers to "Is this right?" and editors' review of the corrections: the rules, in one place.

The result page and the JSON API both call ``record_feedback``; the editors' review queue calls
``review_correction``. Both raise ``FeedbackError`` with an HTTP status and a message fit to show.
A "wrong" answer waits for review (``review_status`` "pending"); once an editor accepted or
dismissed it, the visitor's answer is final. Both writes are conditional UPDATEs, so a visitor
changing their answer and an editor reviewing it (or two editors at once) cannot both win.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import or_
from sqlalchemy.orm.exc import ObjectDeletedError

from ml import images
from webapp.errors import ServiceError
from webapp.extensions import db
from webapp.models import FEEDBACK, Landmark, Recognition, ReferencePhoto, User, fold, utcnow
from webapp.references import add_reference_from_recognition, remove_reference_photo
from webapp.storage import original_path
from webapp.uploads import discard

NONE = "none"  # the form's value for "None of these / not a landmark" (the JSON API also takes null)
REVIEWED = ("accepted", "dismissed")
PER_PAGE = 50  # corrections per page of the review queue


class FeedbackError(ServiceError):
    """A visitor's answer or an editor's review refused."""


def already_reviewed() -> str:
    return _("An editor has already reviewed your answer, so it can no longer be changed. Thank you!")


def landmark_choices(lang: str) -> list[Landmark]:
    """Every catalog landmark, sorted by its name in ``lang`` as the catalog search folds it (no diacritics)."""
    landmarks = db.session.scalars(db.select(Landmark)).all()
    return sorted(landmarks, key=lambda lm: (fold(lm.name(lang)), lm.slug))


def record_feedback(rec: Recognition, answer: str | None, slug: str | None, uploader: bool = False) -> Recognition:
    """Store the visitor's answer: ``"correct"``, or ``"wrong"`` with the right landmark's ``slug``
    (``None`` or ``"none"``: none of these / not a landmark). Naming a landmark may keep the photo as a
    reference photo, so only its ``uploader`` (the delete token's holder) may. Raises ``FeedbackError``."""
    if rec.status != "done":
        raise FeedbackError(409, _("You can tell us whether the result is right once the photo is recognised."))
    if rec.review_status in REVIEWED:
        raise FeedbackError(409, already_reviewed())
    if answer not in FEEDBACK:
        raise FeedbackError(400, _("Answer whether the result is right or wrong."))
    corrected = None
    if answer == "wrong" and slug not in (None, NONE):
        if not isinstance(slug, str) or not slug:
            raise FeedbackError(400, _("Choose the right landmark, or “None of these / not a landmark”."))
        corrected = db.session.scalars(db.select(Landmark).filter_by(slug=slug)).first()
        if corrected is None:
            raise FeedbackError(400, _("There is no landmark “%(slug)s” in our catalog.", slug=slug[:80]))
        if corrected.id == rec.landmark_id:
            raise FeedbackError(400, _("That is the landmark we named; answer “Yes” if the result is right."))
        if not uploader:
            raise FeedbackError(403, _("Only the person who uploaded this photo can tell us which landmark it "
                                       "shows, because a copy of the photo may be kept."))
    written = db.session.execute(
        db.update(Recognition)
        .where(Recognition.id == rec.id, Recognition.status == "done",
               or_(Recognition.review_status.is_(None), Recognition.review_status.not_in(REVIEWED)))
        .values(feedback=answer, corrected_landmark_id=corrected.id if corrected else None, feedback_at=utcnow(),
                review_status="pending" if answer == "wrong" else None)  # "correct" withdraws a pending correction
    ).rowcount  # type: ignore[attr-defined]  # a CursorResult; execute() is typed as Result
    db.session.commit()  # expires ``rec``: it reloads what was written
    if not written:  # an editor reviewed it (or the uploader deleted it) a moment ago
        raise FeedbackError(409, already_reviewed())
    return rec


def delete_upload(rec: Recognition) -> None:
    """The uploader deletes their photo: the recognition, its files and any reference photo copied from it
    by an accepted correction (the uploader's wish covers every copy of their photo)."""
    copies = db.session.scalars(db.select(ReferencePhoto).filter_by(recognition_id=rec.id)).all()
    for photo in copies:
        remove_reference_photo(photo)
    discard(rec)


def pending_corrections(page: int):
    """The review queue: pending corrections, oldest answer first (a Flask-SQLAlchemy pagination)."""
    stmt = (db.select(Recognition).where(Recognition.review_status == "pending")
            .order_by(Recognition.feedback_at, Recognition.id))
    return db.paginate(stmt, page=page, per_page=PER_PAGE, error_out=False)


def photo_kept(rec: Recognition) -> bool:
    """Whether the visitor's photo is still stored (the retention purge or the uploader may have deleted it)."""
    return original_path(rec).is_file()


def review_correction(rec: Recognition, user: User, accept: bool,
                      landmark: Landmark | None = None) -> ReferencePhoto | None:
    """Accept or dismiss a pending correction; returns the new reference photo, if one was added.

    Accepting copies the photo into the reference photos of ``landmark`` (the editor's choice) or
    else of the landmark the visitor picked; a visitor's "none" is only recorded. Raises ``FeedbackError``.
    """
    if rec.review_status in REVIEWED:
        raise FeedbackError(409, _("This correction has already been reviewed."))
    if rec.review_status != "pending":
        raise FeedbackError(409, _("This correction is no longer waiting for review: the visitor withdrew it."))
    target = (landmark or rec.corrected_landmark) if accept else None
    if target is not None and not photo_kept(rec):
        raise FeedbackError(409, _("The visitor's photo is no longer stored (deleted by its uploader or past the "
                                   "retention period), so it cannot become a reference photo. "
                                   "Dismiss this correction."))
    if not _set_review(rec.id, "pending", "accepted" if accept else "dismissed", user.id, utcnow()):
        raise FeedbackError(409, _("This correction has already been reviewed."))
    if target is None:
        return None
    try:
        return add_reference_from_recognition(rec, target, user)  # type: ignore[arg-type]  # a Landmark at runtime
    except (OSError, images.ImageError, ObjectDeletedError):  # file or row gone since the check: undo
        db.session.rollback()
        _set_review(rec.id, "accepted", "pending", None, None)
        raise FeedbackError(409, _("The visitor's photo could not be read, so it cannot become a reference photo. "
                                   "Dismiss this correction.")) from None


def _set_review(rec_id: str, current: str, status: str, user_id: int | None, at) -> bool:
    written = db.session.execute(
        db.update(Recognition).where(Recognition.id == rec_id, Recognition.review_status == current)
        .values(review_status=status, reviewed_by_id=user_id, reviewed_at=at)
    ).rowcount  # type: ignore[attr-defined]  # a CursorResult; execute() is typed as Result
    db.session.commit()
    return bool(written)
