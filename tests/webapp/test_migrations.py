"""Migrations create exactly the models' schema, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from config import database_url
from testsupport.factories import make_config, postgres_url_or_skip
from webapp import create_app
from webapp.extensions import db


def assert_schema_matches_models(app):
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        if conn.dialect.name == "sqlite":  # SQLAlchemy cannot reflect this one's ON DELETE there (migration 0005)
            assert_cover_photo_key_sets_null(conn)
            diff = [d for d in diff if not (d[0] in ("add_fk", "remove_fk")
                                            and d[1].column_keys in (["cover_photo_id"], ["album_id"]))]
    assert diff == []


def assert_cover_photo_key_sets_null(conn):
    keys = conn.exec_driver_sql("PRAGMA foreign_key_list(landmark)").mappings().all()
    assert [(k["from"], k["table"], k["to"], k["on_delete"]) for k in keys] == [
        ("cover_photo_id", "reference_photo", "id", "SET NULL")]


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
    from webapp.models import ReferencePhoto

    with app.app_context():
        downgrade(revision="0003")
        landmark_id = old_landmark()
        for embedded in (True, False):
            db.session.add(ReferencePhoto(
                landmark_id=landmark_id, stored_name="0" * 32, sha256="0" * 64, image_format="JPEG",
                embedding=b"\0" * 16 if embedded else None, embedding_version="v1" if embedded else None,
                error=None if embedded else "unreadable"))
        db.session.commit()
        upgrade()
        db.session.expire_all()
        rows = db.session.execute(db.select(ReferencePhoto.embedding, ReferencePhoto.embedding_version,
                                            ReferencePhoto.error).order_by(ReferencePhoto.id)).all()
        assert [tuple(r) for r in rows] == [(None, None, None), (None, None, "unreadable")]


def old_landmark() -> int:
    """A landmark row of a schema before 0005 (no cover photo column): the id."""
    from webapp.models import Landmark

    return db.session.execute(db.insert(Landmark).values(
        slug="thap", class_key=None, name_vi="Tháp", name_en="Tower", lat=21.0, lon=105.8, search_text="thap")
        .returning(Landmark.id)).scalar_one()


def test_0005_keeps_reference_photos_and_results_and_removing_a_cover_photo_unsets_it(app):
    """0005 adds columns in place: no table copy, whose drop would delete the landmarks' photos (SQLite's
    foreign keys cascade). Removing the photo chosen as a landmark's cover leaves the landmark without one."""
    from webapp.models import Landmark, Recognition, ReferencePhoto

    with app.app_context():
        downgrade(revision="0004")
        landmark_id = old_landmark()
        photo = ReferencePhoto(landmark_id=landmark_id, stored_name="0" * 32, sha256="0" * 64, image_format="JPEG")
        db.session.add(photo)
        db.session.execute(db.insert(Recognition).values(
            id="old-result", stored_name="1" * 32, sha256="1" * 64, image_format="JPEG", status="done",
            label="thap", landmark_id=landmark_id, attempts=1))
        db.session.commit()
        upgrade()
        db.session.expire_all()
        assert db.session.scalars(db.select(ReferencePhoto.landmark_id)).all() == [landmark_id]
        old = db.session.get(Recognition, "old-result")
        assert (old.landmark_id, old.tier, old.suggestions, old.places) == (landmark_id, None, None, None)
        landmark = db.session.get(Landmark, landmark_id)
        landmark.cover_photo_id = photo.id
        db.session.commit()
        db.session.delete(db.session.get(ReferencePhoto, photo.id))
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(Landmark, landmark_id).cover_photo_id is None
