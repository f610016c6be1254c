"""Errors: JSON with a clear message for the API, a friendly page for visitors; never a bare 500."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from kombu.exceptions import OperationalError as BrokerUnavailable
from sqlalchemy.exc import OperationalError as DatabaseUnavailable
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from webapp.extensions import db


class ServiceError(Exception):
    """A refused request: an HTTP status and a message fit to show the person who made it (Flask's
    ``InvalidAPIUsage`` pattern). The service modules raise their own kinds (``UploadError``,
    ``FeedbackError``, ``ModelVersionError``); one handler below answers any that a view lets through."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path == "/healthz"
        or request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, message: str, **details):
    """``{"error", "status"}`` (and ``details``, e.g. an album's per-file ``errors``) for the API, else a page."""
    if wants_json():
        return jsonify(error=message, status=status, **details), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.teardown_appcontext  # registered after Flask-SQLAlchemy's, so it runs before it
    def drop_broken_session(_exc) -> None:
        """A database that went away mid-request must not turn the end of the request into a crash."""
        try:
            db.session.remove()
        except Exception:  # the rollback on a dead connection failed: the connection is already invalidated
            app.logger.warning("database session could not be closed cleanly; discarded it", exc_info=True)
            db.session.registry.clear()

    @app.errorhandler(ServiceError)
    def refused(err: ServiceError):
        return error_response(err.status, err.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err):
        return error_response(413, _("The file is larger than %(mb)s MB.", mb=app.config["MAX_UPLOAD_MB"]))

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return error_response(err.code or 500, err.description or err.name)

    @app.errorhandler(DatabaseUnavailable)
    @app.errorhandler(BrokerUnavailable)
    def service_unavailable(err):
        app.logger.error("service unavailable: %s", err)
        return error_response(503, _("The service is busy or restarting; please try again in a moment."))

    @app.errorhandler(Exception)
    def unexpected(err):  # a bug: logged with its traceback, answered in the same shape as other errors
        app.logger.exception("unhandled error")
        return error_response(500, _("Something went wrong on our side; please try again."))
