"""`flask landmarks import FILE`: idempotent upsert by slug, with the editors' validation, all or nothing."""
import json

from testsupport.factories import CATALOG_FILE, SAMPLE_CATALOG
from webapp.extensions import db
from webapp.models import Landmark


def import_file(runner, tmp_path, entries):
    file = tmp_path / "catalog.json"
    file.write_text(json.dumps(entries), encoding="utf-8")
    return runner.invoke(args=["landmarks", "import", str(file)])


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Landmark.id)))


def test_import_is_idempotent_and_updates_by_slug(app, runner, tmp_path):
    result = import_file(runner, tmp_path, SAMPLE_CATALOG)
    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated" in result.output
    with app.app_context():
        before = {lm.slug: lm.updated_at for lm in db.session.scalars(db.select(Landmark))}
    assert "0 created, 0 updated, 3 unchanged" in import_file(runner, tmp_path, SAMPLE_CATALOG).output
    with app.app_context():  # re-import changes nothing, not even the timestamps
        assert {lm.slug: lm.updated_at for lm in db.session.scalars(db.select(Landmark))} == before

    changed = [dict(SAMPLE_CATALOG[0], name_en="Halong Bay", lat="20.95")] + SAMPLE_CATALOG[1:]
    assert "0 created, 1 updated" in import_file(runner, tmp_path, changed).output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Landmark.id))) == 3
        halong = db.session.scalars(db.select(Landmark).filter_by(slug="vinh-ha-long")).one()
        assert (halong.name_en, halong.lat) == ("Halong Bay", 20.95)


def test_import_refuses_incomplete_entries(app, runner, tmp_path):
    result = import_file(runner, tmp_path, [{"slug": "x", "name_vi": "X"}])
    assert result.exit_code != 0
    assert "entry 1 (x)" in result.output and "name_en: This field is required." in result.output
    assert count(app) == 0


def test_a_bad_entry_refuses_the_whole_file(app, runner, tmp_path):
    """The editors' rules, by entry and field; the good entries are not imported either."""
    bad = [
        *SAMPLE_CATALOG,
        dict(SAMPLE_CATALOG[0], slug="Not A Slug", class_key="Other"),
        dict(SAMPLE_CATALOG[0], slug="other-bay", class_key="Vinh_Ha_Long", lat=200),
        dict(SAMPLE_CATALOG[0], slug="ho-hoan-kiem"),
        dict(SAMPLE_CATALOG[0], slug="typo", class_key=None, descripton_en="x"),
        "not an object",
    ]
    result = import_file(runner, tmp_path, bad)
    assert result.exit_code != 0 and "nothing imported" in result.output
    assert "entry 4 (Not A Slug): slug: Use lower-case letters" in result.output
    assert "entry 5 (other-bay): lat: Must be between -90 and 90." in result.output
    assert "class_key: Another landmark (vinh-ha-long) already uses this." in result.output
    assert "entry 6 (ho-hoan-kiem): slug: appears more than once" in result.output
    assert "entry 7 (typo): descripton_en: Unknown field." in result.output
    assert "entry 8: not a JSON object" in result.output
    assert count(app) == 0


def test_a_bad_update_leaves_the_catalog_as_it_was(app, runner, tmp_path):
    import_file(runner, tmp_path, SAMPLE_CATALOG)
    changed = [dict(SAMPLE_CATALOG[0], name_en="Halong Bay"), dict(SAMPLE_CATALOG[1], class_key="Vinh_Ha_Long")]
    result = import_file(runner, tmp_path, changed)
    assert result.exit_code != 0 and "entry 2 (ho-hoan-kiem): class_key: Another landmark" in result.output
    with app.app_context():
        assert db.session.scalars(db.select(Landmark).filter_by(slug="vinh-ha-long")).one().name_en == "Ha Long Bay"


def test_the_shipped_catalog_imports(app, runner):
    result = runner.invoke(args=["landmarks", "import", str(CATALOG_FILE)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        landmarks = db.session.scalars(db.select(Landmark)).all()
        assert len(landmarks) >= 81
        assert sum(1 for lm in landmarks if lm.class_key) == 50
    assert "0 created, 0 updated" in runner.invoke(args=["landmarks", "import", str(CATALOG_FILE)]).output
