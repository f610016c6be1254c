"""The web application — and the core the workers share with it.

Two parts live here. The shared core, which ``worker/`` imports too: the database models
(``models``), the settings and app factory (``create_app``), where uploads and reference photos are
stored and how they are decoded (``uploads``, ``references``), the sweeper and the purge
(``maintenance``), the operators' queries (``observability/``). And the web proper: pages, the JSON
API, sign-in, forms, rate limits and headers (``views/``, ``auth``, ``security``, ``openapi``).

The web process validates, stores and enqueues; it never imports an ML runtime (only light ``ml``
modules: Pillow + numpy). Recognition runs in ``worker/``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from config import INSTANCE_DIR, Config
from webapp import cli, errors, geo, request_checks, security
from webapp.auth import login_manager
from webapp.celery_app import celery_init_app
from webapp.extensions import babel, csrf, db, migrate
from webapp.i18n import current_language, select_locale

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: dict | None = None) -> Flask:
    """Build the app from ``Config`` (environment variables), then ``config`` overrides (tests)."""
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(Config())
    app.config.update(config or {})
    request_checks.init_app(app)  # NUL bytes, id ranges, JSON depth (before the routes: their converters)
    from webapp.logs import configure_logging  # LOG_FORMAT, LOG_LEVEL
    configure_logging(app)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None (no limit), so setdefault would not do
        app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + 64 * 1024
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        # web and worker processes share the file: wait for the lock instead of failing
        engine_options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}, **engine_options}

    if app.config["TRUSTED_PROXIES"] > 0:  # the client's address, scheme and host as the proxies in front saw them
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    from webapp.albums import widen_request_limit
    app.before_request(widen_request_limit)  # before the CSRF check, the first to read a form's body
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    celery_init_app(app)
    app.jinja_env.globals["current_language"] = current_language

    from webapp.views import api, catalog, editor, editor_api, models_api, pages, review
    from webapp.views import auth as auth_views
    from webapp.views import models as model_views

    app.register_blueprint(pages.bp)
    app.register_blueprint(catalog.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(editor.bp)
    app.register_blueprint(editor_api.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(model_views.bp)
    app.register_blueprint(models_api.bp)
    csrf.exempt(api.bp)
    csrf.exempt(editor_api.bp)  # bearer tokens only (webapp.auth.api_role_required)
    csrf.exempt(models_api.bp)
    errors.init_app(app)
    security.init_app(app)  # headers and rate limits (after the views it wraps, after the generic handlers)
    geo.init_app(app)  # map helpers for the _map.html macro
    cli.init_app(app)
    from webapp.views import ops  # /readyz and /metrics (webapp/observability/)
    app.register_blueprint(ops.bp)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets the web read while the worker writes; foreign keys are off by default in SQLite."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
