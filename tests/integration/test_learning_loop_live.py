"""The learning loop against a REAL Celery worker process, driven through the editors' and admins' API:
enrol a landmark the model never saw and recognise it; retrain on the real queue; activate the new
version and watch the running worker switch to it (and back) without a restart."""
import io
import json
import time

import pytest

from testsupport.auth_helpers import api_headers, make_user
from testsupport.factories import TINY_TRAINING, TOWER, tiny_training_dataset, tower_photo
from testsupport.live_stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learning")
    base = tiny_training_dataset(tmp / "base")
    options = TINY_TRAINING
    stack = Stack(tmp, TRAINING_DATA_DIR=str(base), TRAINING_ARCH="lenet5", TRAINING_OPTIONS=options)
    stack.prepare()
    # one worker for both queues: recognitions keep flowing while a training run goes on
    stack.start_worker(4, "threads", "inference,training", MODEL_CHECK_S="0.5", TRAINING_DATA_DIR=str(base),
                       TRAINING_ARCH="lenet5", TRAINING_OPTIONS=json.dumps(options))
    stack.editor = api_headers(stack.app, make_user(stack.app, "editor"))
    stack.admin = api_headers(stack.app, make_user(stack.app, "admin"))
    yield stack
    stack.stop()


def wait(stack, check, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        assert stack.worker.poll() is None, f"worker died:\n{stack.log.read_text()[-3000:]}"
        time.sleep(0.3)
    pytest.fail(f"{what} not within {timeout}s:\n{stack.log.read_text()[-3000:]}")


def test_a_landmark_enrolled_through_the_api_is_recognised_by_the_running_worker(stack):
    client = stack.client
    before = stack.wait_finished(stack.upload(tower_photo(7, 99)))
    assert before["status"] == "done" and before["matched_by"] == "classifier"  # not the tower: unknown to it

    assert client.post("/api/v1/landmarks", json=TOWER, headers=stack.editor).status_code == 201
    photos = [(io.BytesIO(tower_photo(7, view)), f"{view}.jpg") for view in range(10)]
    resp = client.post(f"/api/v1/landmarks/{TOWER['slug']}/photos", data={"photos": photos}, headers=stack.editor)
    assert resp.status_code == 201 and len(resp.get_json()["photos"]) == 10

    def embedded():
        listed = client.get(f"/api/v1/landmarks/{TOWER['slug']}/photos", headers=stack.editor).get_json()
        return all(p["embedding"]["state"] == "embedded" for p in listed["photos"])

    wait(stack, embedded, "the worker embedding the reference photos")
    after = stack.wait_finished(stack.upload(tower_photo(7, 99)))  # a view that was never enrolled
    assert after["suggestions"][0]["slug"] == TOWER["slug"] and after["matched_by"] == "reference"
    assert after["tier"] == "maybe" and after["landmark"] is None  # few-shot matching is never a sure answer
    assert after["model_version"] == before["model_version"]  # no retraining happened


def test_retraining_on_the_real_queue_then_activation_switches_the_running_worker(stack):
    client = stack.client
    shipped = stack.wait_finished(stack.upload(tower_photo(7, 98)))["model_version"]

    resp = client.post("/api/v1/models/train", headers=stack.editor)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    version_id = resp.get_json()["id"]

    def trained():
        body = client.get(f"/api/v1/models/{version_id}", headers=stack.editor).get_json()
        return body if body["status"] in ("ready", "failed") else None

    version = wait(stack, trained, "the training run")
    assert version["status"] == "ready", version
    assert TOWER["slug"] in version["classes"]  # the enrolled landmark became a trained class

    assert client.post(f"/api/v1/models/{version_id}/activate", headers=stack.editor).status_code == 403
    assert client.post(f"/api/v1/models/{version_id}/activate", headers=stack.admin).status_code == 200
    switched = wait(stack, lambda: (body := stack.wait_finished(stack.upload(tower_photo(7, 97))))
                    ["model_version"] == version["version"] and body, "the worker switching models", 60)
    assert switched["status"] == "done"

    assert client.post("/api/v1/models/shipped/activate", headers=stack.admin).status_code == 200
    wait(stack, lambda: stack.wait_finished(stack.upload(tower_photo(7, 96)))["model_version"] == shipped,
         "the worker switching back", 60)
