"""The learning loop in one process: few-shot enrolment, retraining, activation switching the served model.

The real worker-process versions of these run in tests/integration/test_learning_loop_live.py.
"""
import io
from pathlib import Path

import pytest

from testsupport.factories import TINY_TRAINING, TOWER, jpeg_bytes, tiny_training_dataset, tower_photo
from webapp.extensions import db
from webapp.models import Landmark, ModelVersion, Recognition, ReferencePhoto
from worker.tasks import embed_references, recognize, train_model


def files(photos: list[bytes]):
    from werkzeug.datastructures import FileStorage

    return [FileStorage(io.BytesIO(data), filename=f"p{i}.jpg") for i, data in enumerate(photos)]


def enrol(app, landmark_fields: dict, photos: list[bytes]) -> list[int]:
    """Create a landmark with reference photos and embed them (as the inference worker would)."""
    from webapp.references import add_reference_photos

    with app.app_context():
        landmark = Landmark(**landmark_fields)
        db.session.add(landmark)
        db.session.commit()
        ids = [p.id for p in add_reference_photos(landmark, files(photos), None)]
        assert embed_references.apply(args=[ids]).get() == len(ids)
        return ids


def recognise(app, client, data: bytes) -> Recognition:
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), "photo.jpg")})
    rec_id = resp.get_json()["id"]
    with app.app_context():
        recognize.apply(args=[rec_id]).get()
        db.session.expire_all()
        rec = db.session.get(Recognition, rec_id)
        db.session.expunge(rec)
        return rec


@pytest.fixture
def fast_app(tmp_path):
    from testsupport.factories import build_app, make_config

    return build_app(make_config(tmp_path, MODEL_CHECK_S=0))  # workers look for a new model before every batch


def test_a_landmark_enrolled_from_ten_photos_is_recognised_without_retraining(fast_app):
    client = fast_app.test_client()
    before = recognise(fast_app, client, tower_photo(7, 99))
    assert before.status == "done" and before.landmark_id is None  # the shipped model does not know it

    ids = enrol(fast_app, TOWER, [tower_photo(7, view) for view in range(10)])
    enrol(fast_app, dict(TOWER, slug="thap-khac", name_en="Other Tower"), [tower_photo(8, v) for v in range(10)])
    with fast_app.app_context():
        photo = db.session.get(ReferencePhoto, ids[0])
        assert photo.embedding_version == before.model_version and len(photo.embedding) > 100

    after = recognise(fast_app, client, tower_photo(7, 99))  # a view that was not enrolled
    assert after.status == "done" and after.matched_by == "reference"
    with fast_app.app_context():
        assert db.session.get(Landmark, after.landmark_id).slug == "thap-thu-nghiem"
    body = client.get(f"/api/v1/recognitions/{after.id}").get_json()
    assert body["matched_by"] == "reference" and body["tier"] == "maybe"  # few-shot matching is never sure
    assert body["suggestions"][0]["slug"] == "thap-thu-nghiem" and body["landmark"] is None

    plain = recognise(fast_app, client, jpeg_bytes(color=(250, 250, 250)))  # a blank photo is no tower
    assert plain.landmark_id is None or plain.matched_by == "classifier"


def test_an_unreadable_reference_photo_gets_an_error_not_a_crash(fast_app):
    ids = enrol(fast_app, TOWER, [tower_photo(7, 0)])
    with fast_app.app_context():
        photo = db.session.get(ReferencePhoto, ids[0])
        (Path(fast_app.config["REFERENCE_DIR"]) / f"{photo.stored_name}.orig").write_bytes(b"garbage")
        photo.embedding_version = None
        db.session.commit()
        assert embed_references.apply(args=[[ids[0]]]).get() == 0
        db.session.expire_all()
        assert "image" in db.session.get(ReferencePhoto, ids[0]).error


def test_retraining_registers_a_version_that_activation_switches_to_and_back(tmp_path):
    from testsupport.factories import build_app, make_config

    app = build_app(make_config(tmp_path, MODEL_CHECK_S=0,
                                TRAINING_DATA_DIR=str(tiny_training_dataset(tmp_path / "base")),
                                TRAINING_ARCH="lenet5", TRAINING_OPTIONS=TINY_TRAINING))
    client = app.test_client()
    enrol(app, TOWER, [tower_photo(5, v) for v in range(4)])  # enrolled photos join the training set
    shipped = recognise(app, client, tower_photo(5, 50)).model_version

    with app.app_context():
        row = ModelVersion(arch="lenet5", status="training", progress={"phase": "queued"})
        db.session.add(row)
        db.session.commit()
        assert train_model.apply(args=[row.id]).get() == "ready"
        db.session.expire_all()
        row = db.session.get(ModelVersion, row.id)
        assert row.status == "ready" and row.version and row.error is None
        assert row.classes == ["Alpha_Gate", "Beta_Tower", "thap-thu-nghiem"]
        assert 0.0 <= row.metrics["top1"] <= 1.0
        assert [h["epoch"] for h in row.progress["history"]] == [1, 2] and row.progress["phase"] == "done"
        assert (Path(row.bundle_dir) / "references.npz").is_file() and (Path(row.bundle_dir) / "report.md").is_file()
        row.is_active = True
        db.session.commit()
        trained_version = row.version

    assert recognise(app, client, tower_photo(5, 50)).model_version == trained_version  # no restart
    with app.app_context():  # activation re-embeds the reference photos with the new model
        assert embed_references.apply(args=[None]).get() == 4
        versions = db.session.scalars(db.select(ReferencePhoto.embedding_version)).all()
        assert set(versions) == {trained_version}
        db.session.get(ModelVersion, row.id).is_active = False  # roll back to the shipped model
        db.session.commit()
    assert recognise(app, client, tower_photo(5, 50)).model_version == shipped


def test_a_failed_training_run_ends_failed_with_its_error(tmp_path):
    from testsupport.factories import build_app, make_config

    app = build_app(make_config(tmp_path, TRAINING_DATA_DIR=None))
    with app.app_context():
        row = ModelVersion(arch="lenet5", status="training")
        db.session.add(row)
        db.session.commit()
        assert train_model.apply(args=[row.id]).get() == "failed"
        db.session.expire_all()
        row = db.session.get(ModelVersion, row.id)
        assert row.status == "failed" and "at least 2 landmarks" in row.error and row.finished_at
