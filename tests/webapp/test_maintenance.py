"""The sweeper (stuck recognitions are sent again, then failed), the purge, and `flask ops`."""
import io
from datetime import timedelta
from pathlib import Path

from testsupport.factories import build_app, jpeg_bytes, make_config, queued_tasks
from webapp import maintenance
from webapp.extensions import db
from webapp.models import Recognition, finish_once, utcnow


def upload(client) -> str:
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 202
    return resp.get_json()["id"]


def queued_messages(app) -> list[str]:
    return [args[0] for _, args in queued_tasks(app)]


def test_stuck_recognitions_are_sent_again_then_failed_with_a_reason(tmp_path):
    app = build_app(make_config(tmp_path, RECOGNITION_TIMEOUT_S=60, SWEEP_MAX_REQUEUES=2))
    client = app.test_client()
    stuck, running, fresh, done = (upload(client) for _ in range(4))
    assert len(queued_messages(app)) == 4
    with app.app_context():
        long_ago = utcnow() - timedelta(minutes=5)
        for rec_id in (stuck, running, done):
            db.session.get(Recognition, rec_id).enqueued_at = long_ago
        db.session.get(Recognition, running).status = "running"  # its worker was killed
        db.session.commit()
        finish_once(done, "done", label=None)

        assert maintenance.sweep() == {"requeued": 2, "failed": 0, "reference_photos": 0}
        assert sorted(queued_messages(app)) == sorted([stuck, running])
        assert maintenance.sweep() == {"requeued": 0, "failed": 0, "reference_photos": 0}  # just sent: not stuck yet
        assert db.session.get(Recognition, fresh).requeues == 0  # young enough, left alone
        finish_once(fresh, "done", label=None)

        later = utcnow() + timedelta(minutes=2)
        assert maintenance.sweep(now=later) == {"requeued": 2, "failed": 0, "reference_photos": 0}
        assert maintenance.sweep(now=later + timedelta(minutes=2)) == {"requeued": 0, "failed": 2,
                                                                       "reference_photos": 0}
        db.session.expire_all()
        for rec_id in (stuck, running):
            rec = db.session.get(Recognition, rec_id)
            assert rec.status == "failed" and "did not finish" in rec.error and rec.requeues == 2
        assert db.session.get(Recognition, done).status == "done"


def test_a_dead_workers_recognitions_are_sent_again_within_a_minute(tmp_path):
    """A worker's claim records its name; once its heartbeat is stale, its running rows are re-sent long
    before RECOGNITION_TIMEOUT_S, while a live worker's running rows are left alone."""
    from webapp.models import WorkerHeartbeat, claim_many

    app = build_app(make_config(tmp_path, RECOGNITION_TIMEOUT_S=600, WORKER_STALE_S=30))
    client = app.test_client()
    dead_ones, alive_one, unknown_one = [upload(client), upload(client)], upload(client), upload(client)
    queued_messages(app)
    now = utcnow()
    with app.app_context():
        db.session.add_all([WorkerHeartbeat(name="host:1", seen_at=now - timedelta(seconds=45)),  # killed
                            WorkerHeartbeat(name="host:2", seen_at=now - timedelta(seconds=5))])
        db.session.commit()
        assert set(claim_many(dead_ones, worker="host:1")) == set(dead_ones)
        claim_many([alive_one], worker="host:2")
        claim_many([unknown_one], worker="host:3")  # no heartbeat row at all (swept long ago)
        assert db.session.get(Recognition, dead_ones[0]).worker == "host:1"
        db.session.execute(db.update(Recognition).values(enqueued_at=now - timedelta(seconds=41),
                                                         started_at=now - timedelta(seconds=40)))
        db.session.commit()

        assert maintenance.sweep(now=now) == {"requeued": 3, "failed": 0, "reference_photos": 0}
        assert sorted(queued_messages(app)) == sorted(dead_ones + [unknown_one])
        assert maintenance.sweep(now=now) == {"requeued": 0, "failed": 0, "reference_photos": 0}  # once
        db.session.expire_all()
        assert db.session.get(Recognition, alive_one).requeues == 0


def test_a_just_claimed_recognition_is_not_sent_again_before_its_worker_could_beat(tmp_path):
    from webapp.models import claim_many

    app = build_app(make_config(tmp_path, WORKER_STALE_S=30))
    rec_id = upload(app.test_client())
    queued_messages(app)
    with app.app_context():
        claim_many([rec_id], worker="new-worker:7")  # its first heartbeat is not written yet
        assert maintenance.sweep() == {"requeued": 0, "failed": 0, "reference_photos": 0}


def test_a_result_is_written_once(app, client):
    rec_id = upload(client)
    with app.app_context():
        assert finish_once(rec_id, "done", label="Vinh_Ha_Long", confidence=0.9)
        assert not finish_once(rec_id, "failed", error="late duplicate")
        rec = db.session.get(Recognition, rec_id)
        assert (rec.status, rec.label, rec.error) == ("done", "Vinh_Ha_Long", None)


def test_purge_deletes_uploads_older_than_the_retention_period(tmp_path):
    app = build_app(make_config(tmp_path, RETENTION_DAYS=7))
    client = app.test_client()
    old, new = upload(client), upload(client)
    folder = Path(app.config["UPLOAD_DIR"])
    with app.app_context():
        db.session.get(Recognition, old).created_at = utcnow() - timedelta(days=8)
        db.session.commit()
        old_files = {f"{db.session.get(Recognition, old).stored_name}{ext}" for ext in (".orig", ".jpg")}
        assert maintenance.purge() == {"deleted": 1, "files": 0, "albums": 0}
        assert db.session.get(Recognition, old) is None
        assert db.session.get(Recognition, new) is not None
    assert not old_files & {p.name for p in folder.iterdir()}
    assert len(list(folder.iterdir())) == 2
    assert client.get(f"/api/v1/recognitions/{old}").status_code == 404


def test_purge_keeps_a_correction_awaiting_review_until_an_editor_decides(tmp_path):
    import os

    app = build_app(make_config(tmp_path, RETENTION_DAYS=7))
    rec_id = upload(app.test_client())
    folder = Path(app.config["UPLOAD_DIR"])
    old = (utcnow() - timedelta(days=8)).timestamp()
    for path in folder.iterdir():  # files as old as the row
        os.utime(path, (old, old))
    with app.app_context():
        rec = db.session.get(Recognition, rec_id)
        rec.created_at, rec.status, rec.feedback, rec.review_status = (utcnow() - timedelta(days=8), "done", "wrong",
                                                                       "pending")
        db.session.commit()
        assert maintenance.purge() == {"deleted": 0, "files": 0, "albums": 0}
        assert len(list(folder.iterdir())) == 2
        db.session.get(Recognition, rec_id).review_status = "dismissed"
        db.session.commit()
        assert maintenance.purge() == {"deleted": 1, "files": 0, "albums": 0}
    assert not list(folder.iterdir())


def test_sweep_resends_the_embedding_of_reference_photos_left_without_one(tmp_path):
    from config import EMBED_TASK
    from webapp.models import Landmark, ReferencePhoto

    app = build_app(make_config(tmp_path, RECOGNITION_TIMEOUT_S=600))
    with app.app_context():
        landmark = Landmark(slug="thap", name_vi="Tháp", name_en="Tower", lat=16.0, lon=107.0)
        db.session.add(landmark)
        db.session.flush()
        fresh, old, broken = (ReferencePhoto(landmark_id=landmark.id, stored_name=name, sha256="0" * 64,
                                             image_format="JPEG") for name in ("a", "b", "c"))
        old.created_at = broken.created_at = utcnow() - timedelta(hours=1)
        broken.error = "the photo file is missing"  # a known failure is not retried for ever
        db.session.add_all([fresh, old, broken])
        db.session.commit()
        assert maintenance.sweep()["reference_photos"] == 1
        assert queued_tasks(app) == [(EMBED_TASK, [None])]
        old.embedding, old.embedding_version = b"\0" * 16, "v1"
        db.session.commit()
        assert maintenance.sweep()["reference_photos"] == 0 and queued_tasks(app) == []


def test_ops_commands(tmp_path):
    app = build_app(make_config(tmp_path, RECOGNITION_TIMEOUT_S=0))
    upload(app.test_client())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ops", "sweep"])
    assert result.exit_code == 0 and "1 re-enqueued, 0 failed" in result.output
    result = runner.invoke(args=["ops", "purge"])
    assert result.exit_code == 0 and "0 recognitions, 0 empty albums and 0 stray files deleted" in result.output


def test_maintenance_tasks_go_to_their_own_queue_and_beat_schedules_them(app):
    celery = app.extensions["celery"]
    assert celery.amqp.router.route({}, "worker.tasks.sweep")["queue"].name == "maintenance"
    assert celery.amqp.router.route({}, "worker.tasks.purge")["queue"].name == "maintenance"
    assert celery.amqp.router.route({}, "worker.tasks.recognize")["queue"].name == "inference"
    tasks = {entry["task"] for entry in celery.conf.beat_schedule.values()}
    assert tasks == {"worker.tasks.sweep", "worker.tasks.purge"}
