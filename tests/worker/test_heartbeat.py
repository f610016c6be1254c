"""Worker heartbeats (a row per process, kept fresh, removed on exit, survives database outages) and
the worker's log tagging; one real Celery worker checks the signals and its JSON logs end to end."""
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from testsupport.factories import ROOT, build_app, make_config
from webapp.extensions import db
from webapp.logs import JsonFormatter, recognition_id
from webapp.models import WorkerHeartbeat, utcnow
from worker.heartbeat import Heartbeat


def row(app, name):
    with app.app_context():
        found = db.session.get(WorkerHeartbeat, name)
        return None if found is None else {c: getattr(found, c) for c in ("queues", "processed", "seen_at")}


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()):
            return value
        time.sleep(0.05)
    pytest.fail(f"condition not met within {timeout}s")


def test_the_heartbeat_thread_writes_refreshes_and_removes_its_row(app):
    heartbeat = Heartbeat(app, "host:101", ["inference", "maintenance"], interval=0.05).start()
    try:
        first = wait_for(lambda: row(app, "host:101"))
        assert first["queues"] == "inference,maintenance" and first["processed"] == 0
        heartbeat.task_done()
        heartbeat.task_done()
        later = wait_for(lambda: (r := row(app, "host:101")) and r["processed"] == 2 and r)
        assert later["seen_at"] > first["seen_at"]
    finally:
        heartbeat.stop()
    assert row(app, "host:101") is None


def test_a_database_outage_does_not_kill_the_heartbeat(app, caplog):
    heartbeat = Heartbeat(app, "host:102", ["inference"], interval=0.05).start()
    try:
        wait_for(lambda: row(app, "host:102"))
        with app.app_context():  # the table disappears: every beat fails
            db.session.execute(db.text("ALTER TABLE worker_heartbeat RENAME TO worker_heartbeat_away"))
            db.session.commit()
        with caplog.at_level(logging.WARNING, logger="worker.heartbeat"):
            wait_for(lambda: sum("not written" in r.getMessage() for r in caplog.records) >= 3)
        assert heartbeat._thread.is_alive()
        with app.app_context():
            db.session.execute(db.text("ALTER TABLE worker_heartbeat_away RENAME TO worker_heartbeat"))
            db.session.execute(db.delete(WorkerHeartbeat))
            db.session.commit()
        wait_for(lambda: row(app, "host:102"))  # back as soon as the database is
    finally:
        heartbeat.stop()


def test_beats_sweep_rows_of_long_dead_workers(app):
    with app.app_context():
        for name, age in (("dead:1", 301), ("quiet:2", 100)):  # WORKER_STALE_S is 30: sweep after 300 s
            db.session.add(WorkerHeartbeat(name=name, queues="inference", seen_at=utcnow() - timedelta(seconds=age)))
        db.session.commit()
    Heartbeat(app, "host:103", ["inference"], interval=60).beat()
    assert row(app, "dead:1") is None
    assert row(app, "quiet:2") is not None and row(app, "host:103") is not None


def test_recognize_tasks_tag_their_log_lines():
    from worker import signals
    from worker.tasks import recognize

    def line(message):
        return json.loads(JsonFormatter().format(logging.LogRecord("worker.tasks", logging.INFO, __file__, 1,
                                                                   message, None, None)))

    signals.tag_logs(task=recognize, args=["rec-123"])
    assert line("running")["recognition_id"] == "rec-123"
    signals.task_finished(task=recognize)
    assert "recognition_id" not in line("idle") and recognition_id.get() is None


def test_a_real_worker_beats_logs_json_and_says_goodbye(tmp_path):
    """``celery worker`` (threads pool: worker_ready starts the heartbeat; no model is loaded)."""
    app = build_app(make_config(tmp_path))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT), "INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "test",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "CELERY_BROKER_URL": app.config["CELERY"]["broker_url"],
        "LOG_FORMAT": "json", "HEARTBEAT_INTERVAL_S": "0.2",
    }
    log_file = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--quiet", "-A", "worker", "worker", "-Q", "maintenance", "--pool", "threads",
         "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log_file.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        name = f"{socket.gethostname()}:{worker.pid}"
        with app.app_context():
            def beating():
                assert worker.poll() is None, log_file.read_text()[-3000:]
                db.session.expire_all()
                return db.session.get(WorkerHeartbeat, name)
            found = wait_for(beating, timeout=120)
            assert found.queues == "maintenance"
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        assert row(app, name) is None, "the row is deleted when the worker shuts down"
        lines = log_file.read_text().splitlines()
        # every log record is a JSON line, Celery's own included (its direct prints, such as the
        # warm-shutdown notice or the running-as-root warning, are not log records)
        assert not [line for line in lines if re.match(r"\[\d{4}-\d\d-\d\d ", line)], lines
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        assert any(p["logger"].startswith("celery") and "ready" in p["message"] for p in parsed), lines[-10:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
