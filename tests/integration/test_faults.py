"""Faults with real processes: a worker SIGKILLed mid-task, Redis restarted empty, PostgreSQL stopped.

During a stream of uploads; afterwards nothing is stuck, lost or duplicated, and the web answered
503 (never 500) while a server was down. Needs root, PostgreSQL's binaries and redis-server: the run
starts a PostgreSQL cluster and a Redis of its own (live_stack.PrivateServers), never stopping shared ones.
The longer version: ``bench/faults.py``.
"""
import io
import os
from pathlib import Path

import pytest

from testsupport.factories import sample_photos
from testsupport.faults import FaultRun
from testsupport.live_stack import PrivateServers, Stack, servers_controllable


def test_nothing_is_lost_when_worker_broker_and_database_fail(tmp_path):
    problem = servers_controllable()
    if problem:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(problem)
    servers = PrivateServers(tmp_path)  # never the machine's shared PostgreSQL and Redis
    try:
        run_faults(tmp_path, servers)
    finally:
        servers.close()


def run_faults(tmp_path, servers) -> None:
    stack = Stack(tmp_path, servers.database_url, servers.broker_url, RECOGNITION_TIMEOUT_S=6, SWEEP_MAX_REQUEUES=20)
    stack.prepare()
    photos = [p.read_bytes() if isinstance(p, Path) else p for p, _key in sample_photos(per_class=1, classes=4)]
    stack.start_worker()
    try:
        warm_up = stack.upload(photos[0])
        assert stack.wait_finished(warm_up, timeout=120)["status"] == "done"  # the model is loaded
        run = FaultRun(stack, photos, upload_every=0.25, sweep_every=1.0, servers=servers)
        run.outcome.accepted.append(warm_up)
        outcome = run.run(rounds=1, pause=2.0, outage=3.0, drain_timeout=120)
    finally:
        stack.stop()
    report = outcome.summary() + "\n" + "\n".join(outcome.events)
    print(report)
    assert outcome.bad_answers == [], report
    assert outcome.stuck == [], report
    assert outcome.failed_without_reason == [], report
    assert outcome.rows == len(outcome.accepted) == len(set(outcome.accepted)), report  # none lost or doubled
    assert outcome.upload_statuses[202] >= 10, report
    assert outcome.read_statuses_db_down[503] > 0, report  # the outage was seen, and answered with 503s


def test_rate_limits_stored_in_redis_keep_working_in_memory_while_redis_is_down(tmp_path):
    """Rate-limit counters in a Redis that goes away: no 500s; limits still hold (per process) until it returns."""
    import shutil

    from testsupport.auth_helpers import make_user
    from testsupport.factories import build_app, jpeg_bytes, make_config
    from testsupport.faults import answers_with_rate_limit_storage_down
    from testsupport.live_stack import PrivateRedis

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path).start()
    try:
        app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=redis.url,
                                    LOGIN_RATE_LIMIT="3/minute", API_RATE_LIMIT="100/minute"))
        client = app.test_client()
        email = make_user(app)
        first = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
        assert first.status_code == 202
        rec_id = first.get_json()["id"]
        redis.stop()
        assert answers_with_rate_limit_storage_down(client, rec_id, email, "wrong password 1") == {
            "upload": 202, "api read": 200, "landmarks": 200, "sign-in": 401}
        codes = [client.post("/login", data={"email": email, "password": f"wrong {i}"}).status_code for i in range(3)]
        assert codes == [401, 401, 429]  # the sign-in budget still holds, counted in this process's memory
        redis.start()  # back, empty: still answered, and Flask-Limiter moves the counting back to it
        assert client.get(f"/api/v1/recognitions/{rec_id}").status_code == 200
    finally:
        redis.stop()
