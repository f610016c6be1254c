"""The recognize task, run in-process against the app's database and the shipped model."""
import io
import sqlite3
from pathlib import Path

from sqlalchemy import event

from testsupport.factories import build_app, jpeg_bytes, make_config, sample_photos
from webapp.extensions import db
from webapp.models import Recognition
from worker.tasks import recognize


def upload(client, data: bytes) -> str:
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), "photo.jpg")})
    assert resp.status_code == 202
    return resp.get_json()["id"]


def photo_bytes() -> tuple[bytes, str | None]:
    photo, class_key = sample_photos(per_class=1, classes=1)[0]
    return (photo.read_bytes() if isinstance(photo, Path) else photo), class_key


def test_undecodable_file_ends_failed_with_a_clear_error(app, client):
    rec_id = upload(client, jpeg_bytes())
    with app.app_context():
        rec = db.session.get(Recognition, rec_id)
        for kind in ("orig", "jpg"):  # the original and the shown copy, which the model reads
            path = Path(app.config["UPLOAD_DIR"]) / f"{rec.stored_name}.{kind}"
            path.write_bytes(b"\xff\xd8\xff garbage, not a JPEG any more")
        assert recognize.apply(args=[rec_id]).get() == "failed"
        db.session.expire_all()
        rec = db.session.get(Recognition, rec_id)
        assert rec.status == "failed"
        assert "image" in rec.error
        assert rec.started_at and rec.finished_at and rec.label is None


def test_the_model_reads_the_shown_copy_or_else_the_original(app, client, catalog_all):
    data, class_key = photo_bytes()
    first, second = upload(client, data), upload(client, data)
    with app.app_context():
        folder = Path(app.config["UPLOAD_DIR"])
        one, two = (db.session.get(Recognition, rid).stored_name for rid in (first, second))
        (folder / f"{one}.orig").write_bytes(b"not read: the shown copy is")
        (folder / f"{two}.jpg").unlink()  # an upload without a shown copy: its original is read
        assert recognize.apply(args=[first]).get() == "done"
        assert recognize.apply(args=[second]).get() == "done"
        db.session.expire_all()
        answers = [db.session.get(Recognition, rid) for rid in (first, second)]
        assert [(r.label, r.tier) for r in answers] == [(answers[0].label, answers[0].tier)] * 2
        if class_key:
            assert answers[0].label == class_key


def test_missing_recognition_is_ignored(app):
    with app.app_context():
        assert recognize.apply(args=["no-such-id"]).get() is None


def test_recognizes_a_photo_once(app, client, catalog_all):
    data, class_key = photo_bytes()
    rec_id = upload(client, data)
    with app.app_context():
        assert recognize.apply(args=[rec_id]).get() == "done"
        rec = db.session.get(Recognition, rec_id)
        assert rec.status == "done" and rec.error is None
        assert len(rec.top5) == 5 and rec.top5[0][1] >= rec.top5[-1][1]
        assert rec.model_version and rec.inference_ms > 0 and rec.decode_ms > 0
        assert rec.tier in ("sure", "maybe", "unknown") and (rec.label is None) == (rec.tier == "unknown")
        assert rec.places == [] if rec.tier == "sure" else isinstance(rec.places, list)
        if class_key:  # a real photo: the shipped model knows it
            assert rec.label == class_key
            assert rec.landmark.class_key == class_key
        finished = rec.finished_at
        # a redelivered message changes nothing
        assert recognize.apply(args=[rec_id]).get() == "done"
        db.session.expire_all()
        again = db.session.get(Recognition, rec_id)
        assert (again.finished_at, again.attempts) == (finished, 1)


def test_transient_database_errors_are_retried(tmp_path):
    app = build_app(make_config(tmp_path, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 0.1}}))
    rec_id = upload(app.test_client(), jpeg_bytes())
    # another connection holds the write lock, as during a database restart ...
    blocker = sqlite3.connect(tmp_path / "app.sqlite", check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    errors = []

    def release_lock(context):  # ... until the task has run into it once
        errors.append(context.original_exception)
        blocker.rollback()

    with app.app_context():
        event.listen(db.engine, "handle_error", release_lock)
        assert recognize.apply(args=[rec_id]).get() == "done"
        rec = db.session.get(Recognition, rec_id)
        assert rec.status == "done" and rec.attempts == 1  # "running" was written once, after the retry
    assert len(errors) == 1 and "locked" in str(errors[0])
    blocker.close()


def test_the_gpu_workers_tensorflow_runtime_gives_the_same_answer(tmp_path):
    """The GPU worker's path (TensorFlow runtime, micro-batched) run here on the CPU: same label as LiteRT's
    float model (the int8 fast path's scores differ in the third decimal; tests/ml/test_predictor.py)."""
    from worker.engine import loaded_runtime

    data, _ = photo_bytes()
    (tmp_path / "tf").mkdir(), (tmp_path / "lite").mkdir()
    app = build_app(make_config(tmp_path / "lite", INFERENCE_FAST_PATH=False))
    tf_app = build_app(make_config(tmp_path / "tf", INFERENCE_RUNTIME="tensorflow", INFERENCE_MAX_BATCH=64))
    results = []
    for each_app in (app, tf_app):
        rec_id = upload(each_app.test_client(), data)
        with each_app.app_context():
            assert recognize.apply(args=[rec_id]).get() == "done"
            rec = db.session.get(Recognition, rec_id)
            results.append((rec.label, rec.top5[0][0], rec.confidence, rec.model_version))
        assert loaded_runtime() == ("tensorflow" if each_app is tf_app else "litert")
    (lite_label, lite_top, lite_conf, lite_version), (tf_label, tf_top, tf_conf, tf_version) = results
    assert (lite_label, lite_top, lite_version) == (tf_label, tf_top, tf_version)
    assert abs(lite_conf - tf_conf) < 1e-3
