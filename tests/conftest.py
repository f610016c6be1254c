"""Fixtures in the flaskr style: every test gets its own app, database, upload folder and broker."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `pytest` run from anywhere finds config, webapp, worker, ml

from testsupport.factories import SAMPLE_CATALOG, build_app, make_config, postgres_url_or_skip  # noqa: E402


@pytest.fixture
def app(tmp_path):
    return build_app(make_config(tmp_path))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def catalog(app):
    """The sample catalog loaded into the app's database."""
    from webapp.cli import upsert_landmarks

    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    return SAMPLE_CATALOG


@pytest.fixture
def catalog_all(app):
    """The project's real catalog (64 landmarks) loaded into the app's database."""
    import json

    from testsupport.factories import CATALOG_FILE
    from webapp.cli import upsert_landmarks

    with app.app_context():
        upsert_landmarks(json.loads(CATALOG_FILE.read_text(encoding="utf-8")))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request, tmp_path):
    """A migrated app on SQLite, and on PostgreSQL (TEST_DATABASE_URL) for the SQL that differs."""
    if request.param == "sqlite":
        yield build_app(make_config(tmp_path))
        return
    from flask_migrate import upgrade

    from config import database_url
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=database_url(postgres_url_or_skip())))
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
