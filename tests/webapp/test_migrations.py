"""Migrations create exactly the models' schema, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from factories import make_config, postgres_url_or_skip
from config import database_url
from webapp import create_app
from webapp.extensions import db


def assert_schema_matches_models(app):
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_sqlite_upgrade_matches_models_and_downgrades(app):
    assert_schema_matches_models(app)
    with app.app_context():
        downgrade(revision="base")
        assert set(db.inspect(db.engine).get_table_names()) == {"alembic_version"}


def test_postgresql_upgrade_matches_models(tmp_path):
    url = postgres_url_or_skip()
    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=database_url(url)))
    with app.app_context():
        reset_postgres()
        upgrade()
    assert_schema_matches_models(app)


def reset_postgres():
    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
