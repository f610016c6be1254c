"""Claims and results written for many recognitions at once (webapp.models.claim_many / finish_many,
worker.recorder), on SQLite and on PostgreSQL."""
import threading

from sqlalchemy import event

from testsupport.factories import run_in_threads
from webapp.extensions import db
from webapp.models import Recognition, claim_many, finish_many
from worker.recorder import Recorder


def queued(n: int) -> list[str]:
    rows = [Recognition(stored_name=f"file{i}", sha256="0" * 64, image_format="JPEG") for i in range(n)]
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def test_claim_many_claims_only_unfinished_recognitions(any_db_app):
    with any_db_app.app_context():
        ids = queued(3)
        finish_many([(ids[2], "failed", {"error": "unreadable"})])
        assert claim_many(ids + ["no-such-id"]) == {ids[0]: "file0", ids[1]: "file1"}
        db.session.expire_all()
        rows = {r.id: r for r in db.session.scalars(db.select(Recognition))}
        assert [(rows[i].status, rows[i].attempts) for i in ids] == [("running", 1), ("running", 1), ("failed", 0)]
        assert rows[ids[0]].started_at is not None


def test_finish_many_writes_each_result_once(any_db_app):
    with any_db_app.app_context():
        ids = queued(4)
        done = {"label": "Vinh_Ha_Long", "confidence": 0.9, "top5": [["Vinh_Ha_Long", 0.9]], "batch_size": 3}
        written = finish_many([(ids[0], "done", done), (ids[1], "failed", {"error": "unreadable"}),
                               (ids[2], "done", dict(done, label="Trang_An")), (ids[0], "failed", {"error": "dup"})])
        assert written == {ids[0], ids[1], ids[2]}
        assert finish_many([(ids[1], "done", done), (ids[3], "failed", {"error": "late"})]) == {ids[3]}
        db.session.expire_all()
        rows = {r.id: r for r in db.session.scalars(db.select(Recognition))}
        assert [(rows[i].status, rows[i].label, rows[i].error) for i in ids] == [
            ("done", "Vinh_Ha_Long", None), ("failed", None, "unreadable"), ("done", "Trang_An", None),
            ("failed", None, "late")]
        assert rows[ids[0]].top5 == [["Vinh_Ha_Long", 0.9]] and rows[ids[0]].finished_at is not None


def test_recorder_gathers_concurrent_claims_and_results_into_few_statements(any_db_app):
    with any_db_app.app_context():
        ids = queued(24)
        recorder = Recorder(any_db_app)
        statements = []
        event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        start = threading.Barrier(len(ids))
        claimed, written = {}, {}

        def task(rid: str) -> None:
            start.wait()
            claimed[rid] = recorder.claim(rid)
            written[rid] = recorder.finish(rid, "done", label="Vinh_Ha_Long", confidence=0.5)

        run_in_threads(task, ids)
        assert claimed == {rid: f"file{i}" for i, rid in enumerate(ids)}
        assert written == {rid: True for rid in ids}
        assert recorder.claim(ids[0]) is None and recorder.finish(ids[0], "failed", error="late") is False
        updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
        assert len(updates) < len(ids), f"{len(updates)} UPDATE statements for {len(ids)} tasks"
        db.session.expire_all()
        assert db.session.scalar(db.select(db.func.count()).where(Recognition.status == "done")) == len(ids)
