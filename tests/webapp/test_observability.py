"""/readyz, /metrics, JSON logs with the recognition id, and `flask ops stats`.

/metrics is parsed with prometheus_client's own parser and its numbers are checked against rows
inserted here (on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set).
"""
import io
import json
import time
import uuid
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import Config
from ml.bundle import SHIPPED
from testsupport.factories import build_app, jpeg_bytes, make_config, redis_url_or_skip
from webapp import create_app
from webapp.extensions import db
from webapp.logs import configure_logging, recognition_id
from webapp.models import ModelVersion, Recognition, WorkerHeartbeat, utcnow
from webapp.observability.histograms import Histogram

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def metrics(client) -> dict:
    """{metric family name: {(sample name, sorted label items): value}} from /metrics."""
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/plain"
    families = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def sample(families, family, name=None, **labels):
    return families[family][(name or family, tuple(sorted(labels.items())))]


def add_recognition(status="done", created_ago=1.0, latency=None, **values) -> str:
    """A row as the worker leaves it: created ``created_ago`` s ago, finished ``latency`` s later."""
    now = utcnow()
    created = now - timedelta(seconds=created_ago)
    rec = Recognition(stored_name=uuid.uuid4().hex, sha256="0" * 64, image_format="JPEG", status=status,
                      created_at=created, **values)
    if latency is not None:
        rec.finished_at = created + timedelta(seconds=latency)
    db.session.add(rec)
    db.session.commit()
    return rec.id


def add_heartbeat(name, queues="inference", version="vn20-test-1", seen_ago=1.0, processed=0):
    db.session.add(WorkerHeartbeat(name=name, queues=queues, model_version=version, runtime="litert",
                                   seen_at=utcnow() - timedelta(seconds=seen_ago), processed=processed))
    db.session.commit()


# --- /readyz ----------------------------------------------------------------------------------

def test_readyz_is_ready_when_database_and_broker_answer(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ready" and body["failed"] == []
    assert body["database"] == "ok" and body["broker"] == "ok"
    assert body["workers"] == {"live": 0,
                               "queues": {"inference": 0, "maintenance": 0, "training": 0, "inference-album": 0},
                               "model_versions": {}}


def test_readyz_can_require_a_live_inference_worker(app, client):
    assert client.get("/readyz?require_worker=1").status_code == 503
    assert client.get("/readyz?require_worker=1").get_json()["failed"] == ["workers"]
    with app.app_context():
        add_heartbeat("old:1", seen_ago=120)  # stale: not counted
        add_heartbeat("maint:2", queues="maintenance", version=None)  # alive, but not an inference worker
    assert client.get("/readyz?require_worker=1").status_code == 503
    with app.app_context():
        add_heartbeat("a:3")
        add_heartbeat("b:4", queues="inference,maintenance")
    resp = client.get("/readyz?require_worker=1")
    assert resp.status_code == 200
    assert resp.get_json()["workers"] == {"live": 3, "queues": {"inference": 2, "maintenance": 2, "training": 0,
                                                                      "inference-album": 0},
                                          "model_versions": {"vn20-test-1": 2}}


def test_ready_requires_worker_setting(tmp_path):
    client = build_app(make_config(tmp_path, READY_REQUIRES_WORKER=True)).test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz?require_worker=0").status_code == 200  # the probe may ask for less


def test_readyz_503_when_the_database_is_unreachable(tmp_path):
    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'missing' / 'app.sqlite'}"))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["failed"] == ["database"] and body["database"] == "unreachable" and body["broker"] == "ok"
    assert body["workers"] is None
    metrics_resp = app.test_client().get("/metrics")  # no numbers rather than wrong ones, and no 500
    assert metrics_resp.status_code == 503 and "database unavailable" in metrics_resp.get_data(as_text=True)


def test_readyz_503_when_the_broker_is_unreachable_and_metrics_say_so(tmp_path):
    celery = dict(Config().CELERY, broker_url=CLOSED_PORT_REDIS)
    client = build_app(make_config(tmp_path, CELERY=celery)).test_client()
    started = time.monotonic()
    resp = client.get("/readyz")
    assert time.monotonic() - started < 10  # a probe answers quickly
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["failed"] == ["broker"] and body["broker"] == "unreachable" and body["database"] == "ok"
    families = metrics(client)
    assert sample(families, "landmark_broker_up") == 0
    assert not families.get("landmark_queue_depth")  # omitted, not reported as 0


# --- /metrics ---------------------------------------------------------------------------------

def test_metrics_match_the_rows(any_db_app):
    app = any_db_app
    with app.app_context():
        add_recognition("queued", latency=None)
        add_recognition("queued", latency=None)
        add_recognition("running", latency=None)
        add_recognition("done", latency=0.3, inference_ms=12, decode_ms=3, batch_size=1)
        add_recognition("done", latency=1.7, inference_ms=40, decode_ms=3, batch_size=4)
        add_recognition("done", created_ago=20, latency=7.0, inference_ms=300, decode_ms=30, batch_size=16)
        add_recognition("failed", latency=0.2, error="bad image")
        add_recognition("done", created_ago=3600, latency=50, inference_ms=9, batch_size=2)  # before the window
    families = metrics(app.test_client())

    assert {labels[0][1]: v for (_, labels), v in families["landmark_recognitions"].items()} == {
        "queued": 2, "running": 1, "done": 4, "failed": 1}
    assert sample(families, "landmark_recognitions_finished_recent", status="done") == 3
    assert sample(families, "landmark_recognitions_finished_recent", status="failed") == 1
    assert sample(families, "landmark_metrics_window_seconds") == 300

    def buckets(family):
        return {labels[0][1]: v for (name, labels), v in families[family].items() if name.endswith("_bucket")}

    e2e, e2e_name = buckets("landmark_e2e_latency_seconds"), "landmark_e2e_latency_seconds"
    assert [e2e[le] for le in ("0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")] == [0, 1, 1, 2, 2, 3, 3]
    assert sample(families, e2e_name, f"{e2e_name}_count") == 3
    assert sample(families, e2e_name, f"{e2e_name}_sum") == pytest.approx(9.0, abs=0.01)
    model, model_name = buckets("landmark_model_latency_seconds"), "landmark_model_latency_seconds"
    assert [model[le] for le in ("0.01", "0.015", "0.02", "0.05", "0.25", "0.5")] == [0, 1, 1, 2, 2, 3]
    assert sample(families, model_name, f"{model_name}_sum") == pytest.approx(0.352)
    decode = buckets("landmark_decode_latency_seconds")
    assert (decode["0.0025"], decode["0.005"], decode["0.02"], decode["0.05"]) == (0, 2, 2, 3)
    batch = buckets("landmark_batch_size")
    assert (batch["1.0"], batch["2.0"], batch["4.0"], batch["8.0"], batch["16.0"], batch["+Inf"]) == (1, 1, 2, 2, 3, 3)
    assert sample(families, "landmark_batch_size", "landmark_batch_size_sum") == 21


def test_queue_depth_counts_messages_waiting_in_the_embedded_broker(app, client):
    send = app.extensions["celery"].send_task
    for i in range(3):
        send("worker.tasks.recognize", args=[f"r{i}"])
    send("worker.tasks.sweep")
    families = metrics(client)
    assert sample(families, "landmark_broker_up") == 1
    assert sample(families, "landmark_queue_depth", queue="inference") == 3
    assert sample(families, "landmark_queue_depth", queue="maintenance") == 1
    assert sample(families, "landmark_queue_depth", queue="training") == 0
    with app.extensions["celery"].connection_for_read() as conn:  # a delivered message no longer waits
        message = conn.SimpleQueue("inference").get(timeout=5)
        message.ack()
    assert sample(metrics(client), "landmark_queue_depth", queue="inference") == 2


def test_queue_depth_on_redis(tmp_path):
    url = redis_url_or_skip()
    queue = f"test-observability-{uuid.uuid4().hex[:8]}"  # private queue: other tests may share this Redis
    celery = dict(Config().CELERY, broker_url=url, task_default_queue=queue,
                  task_routes={"worker.tasks.*": {"queue": queue}})
    app = build_app(make_config(tmp_path, CELERY=celery))
    for i in range(4):
        app.extensions["celery"].send_task("worker.tasks.recognize", args=[f"r{i}"])
    try:
        families = metrics(app.test_client())
        assert sample(families, "landmark_queue_depth", queue=queue) == 4
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        import redis

        redis.Redis.from_url(url).delete(queue)


def test_live_workers_and_the_models_they_serve(app, client):
    with app.app_context():
        add_heartbeat("host-a:11", processed=5)
        add_heartbeat("host-b:12", queues="inference,maintenance", version="vn20-test-2")
        add_heartbeat("host-c:13", seen_ago=45)  # older than WORKER_STALE_S (30 s): gone
    families = metrics(client)
    assert sample(families, "landmark_workers", queue="inference") == 2
    assert sample(families, "landmark_workers", queue="maintenance") == 1
    assert sample(families, "landmark_workers", queue="training") == 0
    served = {dict(labels)["worker"]: dict(labels)["version"] for (_, labels) in families["landmark_worker_model_info"]}
    assert served == {"host-a:11": "vn20-test-1", "host-b:12": "vn20-test-2"}
    assert sample(families, "landmark_worker_processed_tasks", worker="host-a:11") == 5


def test_active_model_is_the_shipped_bundle_until_a_version_is_activated(app, client):
    shipped = json.loads((SHIPPED / "bundle.json").read_text())["version"]
    families = metrics(client)
    assert sample(families, "landmark_active_model_info", version=shipped, source="bundle") == 1
    with app.app_context():
        db.session.add(ModelVersion(version="vn20-retrained-1", arch="mobilenetv2", status="ready", is_active=True))
        db.session.commit()
    families = metrics(client)
    assert list(families["landmark_active_model_info"]) == [
        ("landmark_active_model_info", (("source", "database"), ("version", "vn20-retrained-1")))]


def test_metrics_and_readyz_are_not_rate_limited(tmp_path):
    client = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, API_RATE_LIMIT="2/minute")).test_client()
    for _ in range(6):
        assert client.get("/metrics").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_histogram_quantiles_interpolate_like_promql():
    h = Histogram((0.1, 0.5, 1.0), [10, 90, 100], 100, 30.0)
    assert h.quantile(0.05) == pytest.approx(0.05)
    assert h.quantile(0.5) == pytest.approx(0.1 + 0.4 * 40 / 80)
    assert h.quantile(0.95) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert Histogram((1.0,), [0], 0, 0.0).quantile(0.5) is None


# --- logs -------------------------------------------------------------------------------------

def test_json_log_lines_carry_the_recognition_id_of_an_upload(tmp_path, capsys):
    config = make_config(tmp_path, LOG_FORMAT="json")
    build_app(config)  # migrations run alembic's logging setup; in production they run in their own process
    client = create_app(config).test_client()
    capsys.readouterr()
    resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 202
    rec_id = resp.get_json()["id"]
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    stored = [line for line in lines if line["message"] == "upload stored"]
    assert len(stored) == 1
    assert stored[0]["recognition_id"] == rec_id
    assert {"ts", "level", "logger", "message", "process"} <= stored[0].keys() and stored[0]["level"] == "INFO"
    assert client.get("/healthz").status_code == 200
    assert recognition_id.get() is None  # the next request in this thread is not tagged with it
    configure_logging(None, "text")


# --- flask ops stats --------------------------------------------------------------------------

def test_ops_stats(app, runner):
    with app.app_context():
        add_recognition("done", latency=0.3, inference_ms=20, batch_size=2)
        add_recognition("done", latency=0.4, inference_ms=20, batch_size=2)
        add_recognition("done", created_ago=200, latency=2.0, inference_ms=30, batch_size=1)
        add_recognition("failed", latency=0.1, error="bad image")
        add_heartbeat("host-a:11", processed=3)
        app.extensions["celery"].send_task("worker.tasks.recognize", args=["x"])
    result = runner.invoke(args=["ops", "stats"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Queues (messages waiting): inference 1, maintenance 0, training 0" in out
    assert "Live workers: 1" in out and "host-a:11" in out and "vn20-test-1" in out and "3 tasks" in out
    assert "Last 5 min: 3 done, 1 failed (25.0 % failed)" in out
    per_minute = out.split("Finished per minute (oldest first, last 5 min): ")[1].splitlines()[0].split()
    assert list(map(int, per_minute)) == [0, 1, 0, 0, 3]
    assert "End-to-end latency: p50" in out and "(3 done;" in out


def test_metrics_need_the_bearer_token_when_one_is_set(tmp_path):
    from testsupport.factories import build_app, make_config

    client = build_app(make_config(tmp_path, METRICS_TOKEN="s3cret-metrics-token")).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-metrics-token"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    scraped = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert scraped.status_code == 200 and b"# TYPE" in scraped.data
