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


def test_0004_hands_stored_signatures_back_to_the_workers(app):
    """One-view signatures look like mirrored ones (same length, same model version): 0004 clears them,
    and the sweeper then finds the photos without an embedding."""
    from webapp.models import Landmark, ReferencePhoto

    with app.app_context():
        downgrade(revision="0003")
        landmark = Landmark(slug="thap", class_key=None, name_vi="Tháp", name_en="Tower", lat=21.0, lon=105.8)
        db.session.add(landmark)
        db.session.flush()
        for embedded in (True, False):
            db.session.add(ReferencePhoto(
                landmark_id=landmark.id, stored_name="0" * 32, sha256="0" * 64, image_format="JPEG",
                embedding=b"\0" * 16 if embedded else None, embedding_version="v1" if embedded else None,
                error=None if embedded else "unreadable"))
        db.session.commit()
        upgrade()
        db.session.expire_all()
        rows = db.session.execute(db.select(ReferencePhoto.embedding, ReferencePhoto.embedding_version,
                                            ReferencePhoto.error).order_by(ReferencePhoto.id)).all()
        assert [tuple(r) for r in rows] == [(None, None, None), (None, None, "unreadable")]
