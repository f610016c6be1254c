"""The workers' Redis transport (worker/broker.py): messages taken many at a time and acknowledged together,
with a real Celery worker on real Redis: each recognition done once, nothing left unacknowledged, and a
worker killed mid-run leaves every unfinished message in the queue or filed as unacknowledged."""
import base64
import json
import time
from pathlib import Path

import pytest

from testsupport.factories import redis_url_or_skip, sample_photos
from testsupport.live_stack import Stack


def broker_state(stack: Stack) -> tuple[list[str], dict[str, str]]:
    """The recognition ids still queued, and those filed as unacknowledged {delivery tag: id}."""
    import redis

    def recognition_id(message: dict) -> str:  # Celery's message body: [args, kwargs, embed], base64 JSON
        return json.loads(base64.b64decode(message["body"]))[0][0]

    client = redis.Redis.from_url(stack.broker_url)
    queued = [recognition_id(json.loads(raw)) for raw in client.lrange("inference", 0, -1)]
    unacked = {tag.decode(): recognition_id(json.loads(raw)[0]) for tag, raw in client.hgetall("unacked").items()}
    return queued, unacked


@pytest.fixture
def stack(tmp_path):
    broker_url = redis_url_or_skip()
    stack = Stack(tmp_path, None, broker_url)
    stack.prepare()
    forget_unacked(stack)  # a killed worker's messages, left by another run
    yield stack
    stack.stop()
    forget_unacked(stack)


def forget_unacked(stack: Stack) -> None:
    import redis

    redis.Redis.from_url(stack.broker_url).delete("unacked", "unacked_index")


def statuses(stack: Stack, ids: list[str]) -> dict[str, str]:
    from webapp.extensions import db
    from webapp.models import Recognition

    with stack.app.app_context():
        db.session.expire_all()
        return dict(db.session.execute(
            db.select(Recognition.id, Recognition.status).where(Recognition.id.in_(ids))).all())


def wait_for(check, timeout: float, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, stack.log.read_text()[-3000:]
        assert stack.worker.poll() is None, stack.log.read_text()[-3000:]
        time.sleep(0.2)


def photos() -> list[bytes]:
    return [p.read_bytes() if isinstance(p, Path) else p for p, _ in sample_photos(per_class=1, classes=4)]


def test_a_queue_taken_many_at_a_time_is_done_once_and_fully_acknowledged(stack):
    ids = [stack.upload(photos()[i % 4]) for i in range(40)]  # queued before the worker starts: taken in bulk
    stack.start_worker(8, "threads")
    wait_for(lambda: all(s == "done" for s in statuses(stack, ids).values()), 180, stack)
    wait_for(lambda: broker_state(stack) == ([], {}), 10, stack)  # the last acknowledgements were flushed
    from webapp.extensions import db
    from webapp.models import Recognition

    with stack.app.app_context():
        attempts = db.session.execute(db.select(Recognition.attempts).where(Recognition.id.in_(ids))).scalars().all()
    assert attempts == [1] * 40  # each message delivered once
    assert "Task worker.tasks.recognize" in stack.log.read_text()  # the worker did use Redis and Celery


def test_a_killed_worker_leaves_every_unfinished_message_queued_or_unacknowledged(stack):
    ids = [stack.upload(photos()[i % 4]) for i in range(60)]
    stack.start_worker(8, "threads")
    wait_for(lambda: list(statuses(stack, ids).values()).count("done") >= 5, 180, stack)
    stack.kill_worker()
    done = {rid for rid, status in statuses(stack, ids).items() if status == "done"}
    queued, unacked = broker_state(stack)
    assert len(done) < len(ids)  # killed mid-run: some were prefetched or running
    assert unacked, "prefetched messages must be filed as unacknowledged"
    assert set(ids) - done <= set(queued) | set(unacked.values())  # nothing lost: each can come back
