"""Upload real photos, let a REAL Celery worker process recognise them, read the stored result."""
from pathlib import Path

from testsupport.factories import postgres_url_or_skip, redis_url_or_skip, sample_photos
from testsupport.live_stack import Stack


def recognise_photos(stack) -> None:
    photos = sample_photos(per_class=1, classes=3)
    ids = [(stack.upload(p.read_bytes() if isinstance(p, Path) else p), key) for p, key in photos]
    for rec_id, class_key in ids:
        body = stack.wait_finished(rec_id)
        assert body["status"] == "done", body
        assert body["model_version"] and 0 < body["confidence"] <= 1
        assert len(body["alternatives"]) == 5
        if class_key:  # a real photo of a trained landmark: named with its catalog entry (sure, or a maybe)
            assert body["tier"] in ("sure", "maybe"), body
            named = body["landmark"] if body["tier"] == "sure" else body["suggestions"][0]
            assert named["slug"] and named["name_vi"]
            assert (named["class_key"] if body["tier"] == "sure" else named["key"]) == class_key


def test_embedded_broker_and_sqlite(embedded_stack):
    recognise_photos(embedded_stack)


def test_redis_and_postgresql(tmp_path):
    db_url, broker_url = postgres_url_or_skip(), redis_url_or_skip()
    stack = Stack(tmp_path, db_url, broker_url)
    stack.prepare()
    stack.start_worker()
    try:
        recognise_photos(stack)
    finally:
        stack.stop()


def test_bad_photo_ends_failed_on_the_real_worker(embedded_stack):
    from config import RECOGNIZE_TASK
    from webapp.extensions import db
    from webapp.models import Recognition

    stack = embedded_stack
    with stack.app.app_context():  # a stored file that went bad before the worker got to it
        rec = Recognition(stored_name="corrupted-file", sha256="0" * 64, image_format="JPEG")
        (Path(stack.config["UPLOAD_DIR"]) / "corrupted-file.orig").write_bytes(b"\xff\xd8\xff corrupted")
        db.session.add(rec)
        db.session.commit()
        stack.app.extensions["celery"].send_task(RECOGNIZE_TASK, args=[rec.id])
        rec_id = rec.id
    body = stack.wait_finished(rec_id)
    assert body["status"] == "failed" and "image" in body["error"]
    # the worker survived and still serves the next photo
    assert stack.wait_finished(stack.upload(sample_bytes()))["status"] == "done"


def sample_bytes() -> bytes:
    photo, _ = sample_photos(per_class=1, classes=1)[0]
    return photo.read_bytes() if isinstance(photo, Path) else photo


def test_readyz_counts_the_real_worker_and_its_model(embedded_stack):
    """The worker process's heartbeat (worker/heartbeat.py) reaches /readyz with the model it loaded."""
    import json
    import os
    import time

    from ml.bundle import SHIPPED

    expected = json.loads((Path(os.environ.get("MODEL_BUNDLE") or SHIPPED) / "bundle.json").read_text())["version"]
    deadline = time.monotonic() + 180
    while True:
        body = embedded_stack.client.get("/readyz?require_worker=1").get_json()
        if body["status"] == "ready" and expected in body["workers"]["model_versions"]:
            break
        assert time.monotonic() < deadline, f"no live worker with {expected}: {body}"
        assert embedded_stack.worker.poll() is None, embedded_stack.log.read_text()[-3000:]
        time.sleep(0.5)
    assert body["workers"]["live"] >= 1 and body["workers"]["queues"]["inference"] >= 1
