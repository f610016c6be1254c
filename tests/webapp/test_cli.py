"""`flask landmarks import FILE`: idempotent upsert by slug."""
import json

from factories import CATALOG_FILE, SAMPLE_CATALOG
from webapp.extensions import db
from webapp.models import Landmark


def test_import_is_idempotent_and_updates_by_slug(app, runner, tmp_path):
    file = tmp_path / "catalog.json"
    file.write_text(json.dumps(SAMPLE_CATALOG), encoding="utf-8")
    result = runner.invoke(args=["landmarks", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated" in result.output
    assert "0 created, 0 updated, 3 unchanged" in runner.invoke(args=["landmarks", "import", str(file)]).output

    changed = [dict(SAMPLE_CATALOG[0], name_en="Halong Bay")] + SAMPLE_CATALOG[1:]
    file.write_text(json.dumps(changed), encoding="utf-8")
    assert "0 created, 1 updated" in runner.invoke(args=["landmarks", "import", str(file)]).output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Landmark.id))) == 3
        assert db.session.scalars(db.select(Landmark).filter_by(slug="vinh-ha-long")).one().name_en == "Halong Bay"


def test_import_refuses_incomplete_entries(app, runner, tmp_path):
    file = tmp_path / "bad.json"
    file.write_text(json.dumps([{"slug": "x", "name_vi": "X"}]), encoding="utf-8")
    result = runner.invoke(args=["landmarks", "import", str(file)])
    assert result.exit_code != 0 and "x" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Landmark.id))) == 0


def test_the_shipped_catalog_imports(app, runner):
    result = runner.invoke(args=["landmarks", "import", str(CATALOG_FILE)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        landmarks = db.session.scalars(db.select(Landmark)).all()
        assert len(landmarks) >= 64
        assert sum(1 for lm in landmarks if lm.class_key) == 20
