"""Model versions on the web: pages, JSON API and `flask models` (who may do what, retraining,
activation and rollback, the shipped pseudo-version, reports and plots from a version's bundle)."""
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from config import EMBED_TASK, TRAIN_TASK
from testsupport.auth_helpers import PASSWORD, api_headers, make_user, signed_in_client
from testsupport.factories import build_app, make_config, queued_tasks
from webapp.extensions import db
from webapp.models import Landmark, ModelVersion, ReferencePhoto, utcnow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # served as bytes, never decoded


@pytest.fixture
def app(tmp_path):
    data = tmp_path / "dataset"
    data.mkdir()
    return build_app(make_config(tmp_path, TRAINING_DATA_DIR=str(data), TRAINING_OPTIONS={"epochs": 1}))




def add_version(app, status: str = "ready", bundle_dir: Path | None = None, **values) -> int:
    with app.app_context():
        version = ModelVersion(arch="tiny", status=status, bundle_dir=str(bundle_dir) if bundle_dir else None,
                               **values)
        db.session.add(version)
        db.session.commit()
        return version.id


def active_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(db.select(ModelVersion.id).filter_by(is_active=True)))


def fake_bundle(folder: Path, report: str = "# Evaluation\n\n- top-1: **90%**\n") -> Path:
    """The files the pages read from a bundle (no model: the web never loads one)."""
    folder.mkdir(parents=True)
    (folder / "report.md").write_text(report)
    for name in ("confusion.png", "rejection.png", "training.png"):
        (folder / name).write_bytes(PNG)
    (folder / "secret.txt").write_text("not a plot")
    return folder


# --- who may do what ---------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_login_from_every_page(app, client):
    version_id = add_version(app, bundle_dir=fake_bundle(Path(app.config["MODEL_DIR"]) / "v1"))
    for path in ("/editor/models", f"/editor/models/{version_id}", "/editor/models/shipped",
                 f"/editor/models/{version_id}/status", f"/editor/models/{version_id}/plots/confusion.png"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    for path in ("/editor/models/train", f"/editor/models/{version_id}/activate", "/editor/models/shipped/activate"):
        response = client.post(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ModelVersion.id))) == 1
    assert active_ids(app) == [] and queued_tasks(app, "training") == []


def test_the_api_wants_a_bearer_token_and_the_right_role(app, client):
    version_id = add_version(app)
    routes = [("get", "/api/v1/models"), ("get", f"/api/v1/models/{version_id}"), ("get", "/api/v1/models/shipped"),
              ("post", "/api/v1/models/train"), ("post", f"/api/v1/models/{version_id}/activate"),
              ("post", "/api/v1/models/shipped/activate")]
    for method, path in routes:
        response = getattr(client, method)(path)
        assert response.status_code == 401 and response.get_json()["error"], path
        response = getattr(client, method)(path, headers={"Authorization": "Bearer lmk_wrong"})
        assert response.status_code == 401, path

    editor = api_headers(app, make_user(app, "editor"))
    for path in (f"/api/v1/models/{version_id}/activate", "/api/v1/models/shipped/activate"):
        response = client.post(path, headers=editor)
        assert response.status_code == 403 and "admin" in response.get_json()["error"]
    assert active_ids(app) == []
    assert client.get("/api/v1/models", headers=editor).status_code == 200
    assert client.get(f"/api/v1/models/{version_id}", headers=editor).status_code == 200
    assert client.post("/api/v1/models/train", headers=editor).status_code == 202

    admin = api_headers(app, make_user(app, "admin"))
    assert client.post(f"/api/v1/models/{version_id}/activate", headers=admin).status_code == 200
    assert client.post("/api/v1/models/shipped/activate", headers=admin).status_code == 200


def test_a_session_cookie_does_not_open_the_api(app):
    client = signed_in_client(app, "admin")
    assert client.get("/api/v1/models").status_code == 401
    assert client.post("/api/v1/models/train").status_code == 401


def test_editors_see_the_pages_but_cannot_activate(app):
    version_id = add_version(app, bundle_dir=fake_bundle(Path(app.config["MODEL_DIR"]) / "v1"))
    editor = signed_in_client(app, "editor")
    page = editor.get("/editor/models")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'action="/editor/models/train"' in html
    assert "/activate" not in html  # no activation buttons for editors
    for path in (f"/editor/models/{version_id}", "/editor/models/shipped", f"/editor/models/{version_id}/status",
                 f"/editor/models/{version_id}/plots/confusion.png"):
        assert editor.get(path).status_code == 200, path
    for path in (f"/editor/models/{version_id}/activate", "/editor/models/shipped/activate"):
        assert editor.post(path).status_code == 403
    assert active_ids(app) == [] and queued_tasks(app, "inference") == []

    admin = signed_in_client(app, "admin")
    html = admin.get("/editor/models").get_data(as_text=True)
    assert f'action="/editor/models/{version_id}/activate"' in html
    response = admin.post(f"/editor/models/{version_id}/activate")
    assert response.status_code == 303 and active_ids(app) == [version_id]
    assert "is active" in admin.get(response.headers["Location"]).get_data(as_text=True)


def csrf_client(app, role: str):
    """A client signed in through the login form with its CSRF token (the app checks CSRF)."""
    client = app.test_client()
    email = make_user(app, role)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": email, "password": PASSWORD,
                                       "csrf_token": token}).status_code in (302, 303)
    return client


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_retrain_and_activate_forms_need_the_csrf_token(tmp_path):
    data = tmp_path / "dataset"
    data.mkdir()
    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True, TRAINING_DATA_DIR=str(data)))
    version_id = add_version(app)
    client = csrf_client(app, "admin")
    token = csrf_token(client.get("/editor/models").get_data(as_text=True))

    assert client.post("/editor/models/train").status_code == 400
    assert client.post(f"/editor/models/{version_id}/activate", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/editor/models/shipped/activate").status_code == 400
    assert active_ids(app) == [] and queued_tasks(app, "training") == [] and queued_tasks(app, "inference") == []

    assert client.post(f"/editor/models/{version_id}/activate", data={"csrf_token": token}).status_code == 303
    assert active_ids(app) == [version_id]
    assert client.post("/editor/models/train", data={"csrf_token": token}).status_code == 303
    assert [name for name, _ in queued_tasks(app, "training")] == [TRAIN_TASK]
    # the bearer-token API stays CSRF-exempt
    response = app.test_client().post("/api/v1/models/shipped/activate", headers=api_headers(app, "admin@example.org"))
    assert response.status_code == 200 and active_ids(app) == []


# --- retraining --------------------------------------------------------------------------------

def test_retrain_creates_a_training_row_and_sends_the_training_task(app, client):
    email = make_user(app, "editor")
    response = client.post("/api/v1/models/train", headers=api_headers(app, email))
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "training" and body["arch"] == app.config["TRAINING_ARCH"]
    assert body["progress"] == {"phase": "queued"} and body["started_by"] == email
    assert body["settings"] == {"epochs": 1, "arch": app.config["TRAINING_ARCH"]}
    assert response.headers["Location"].endswith(f"/api/v1/models/{body['id']}")
    assert queued_tasks(app, "training") == [(TRAIN_TASK, [body["id"]])]
    assert queued_tasks(app, "inference") == []
    with app.app_context():
        row = db.session.get(ModelVersion, body["id"])
        assert row.status == "training" and not row.is_active and row.started_by.email == email


def test_a_second_retrain_is_refused_while_one_is_training(app, client):
    headers = api_headers(app, make_user(app, "editor"))
    first = client.post("/api/v1/models/train", headers=headers).get_json()["id"]
    second = client.post("/api/v1/models/train", headers=headers)
    assert second.status_code == 409 and f"version {first} is still training" in second.get_json()["error"]
    page = signed_in_client(app, "admin").post("/editor/models/train", follow_redirects=True)
    assert "Retraining was not started" in page.get_data(as_text=True)
    assert len(queued_tasks(app, "training")) == 1

    with app.app_context():  # a run that never reported back within TRAINING_TIMEOUT_S is dead
        long_ago = utcnow() - timedelta(seconds=app.config["TRAINING_TIMEOUT_S"] + 60)
        db.session.get(ModelVersion, first).created_at = long_ago
        db.session.commit()
    assert client.post("/api/v1/models/train", headers=headers).status_code == 202


def test_a_finished_run_does_not_block_the_next(app, client):
    add_version(app, status="failed", error="out of memory")
    add_version(app, status="ready")
    assert client.post("/api/v1/models/train", headers=api_headers(app, make_user(app, "admin"))).status_code == 202


def test_retrain_needs_a_dataset_or_reference_photos(tmp_path):
    app = build_app(make_config(tmp_path))  # no TRAINING_DATA_DIR
    headers = api_headers(app, make_user(app, "editor"))
    client = app.test_client()
    response = client.post("/api/v1/models/train", headers=headers)
    assert response.status_code == 400 and "TRAINING_DATA_DIR" in response.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ModelVersion.id))) == 0
        landmark = Landmark(slug="x", name_vi="X", name_en="X", lat=10.0, lon=106.0)
        db.session.add(landmark)
        db.session.flush()
        db.session.add(ReferencePhoto(landmark_id=landmark.id, stored_name="a" * 32, sha256="0" * 64,
                                      image_format="JPEG"))
        db.session.commit()
    assert client.post("/api/v1/models/train", headers=headers).status_code == 202


# --- activation and rollback -------------------------------------------------------------------

def test_activation_is_exclusive_and_re_embeds_references(app, client):
    admin = api_headers(app, make_user(app, "admin"))
    old, new = add_version(app, version="tiny-1"), add_version(app, version="tiny-2")

    response = client.post(f"/api/v1/models/{old}/activate", headers=admin)
    assert response.status_code == 200 and response.get_json()["is_active"] is True
    assert active_ids(app) == [old]
    assert queued_tasks(app, "inference") == [(EMBED_TASK, [None])]

    assert client.post(f"/api/v1/models/{new}/activate", headers=admin).status_code == 200
    assert active_ids(app) == [new]
    listing = client.get("/api/v1/models", headers=admin).get_json()
    assert [(v["id"], v["is_active"]) for v in listing] == [(new, True), (old, False), ("shipped", False)]

    # roll back to the older version, then to the shipped model
    assert client.post(f"/api/v1/models/{old}/activate", headers=admin).status_code == 200
    assert active_ids(app) == [old]
    response = client.post("/api/v1/models/shipped/activate", headers=admin)
    assert response.status_code == 200 and response.get_json()["id"] == "shipped"
    assert active_ids(app) == []
    listing = client.get("/api/v1/models", headers=admin).get_json()
    assert [v["id"] for v in listing if v["is_active"]] == ["shipped"]
    assert queued_tasks(app, "inference") == [(EMBED_TASK, [None])] * 3
    with app.app_context():
        assert db.session.get(ModelVersion, old).activated_at is not None


@pytest.mark.parametrize("status", ["training", "failed"])
def test_only_a_ready_version_can_be_activated(app, client, status):
    pages = signed_in_client(app, "admin")
    admin = api_headers(app, "admin@example.org")
    ready, other = add_version(app), add_version(app, status=status)
    client.post(f"/api/v1/models/{ready}/activate", headers=admin)
    queued_tasks(app, "inference")

    response = client.post(f"/api/v1/models/{other}/activate", headers=admin)
    assert response.status_code == 409 and "only a ready version" in response.get_json()["error"]
    page = pages.post(f"/editor/models/{other}/activate", follow_redirects=True)
    assert page.status_code == 200 and "Not activated" in page.get_data(as_text=True)
    assert active_ids(app) == [ready] and queued_tasks(app, "inference") == []


def test_unknown_versions_are_404(app, client):
    pages = signed_in_client(app, "admin")
    admin = api_headers(app, "admin@example.org")
    for method, path in (("get", "/api/v1/models/999"), ("post", "/api/v1/models/999/activate"),
                         ("get", "/api/v1/models/abc")):
        response = getattr(client, method)(path, headers=admin)
        assert response.status_code == 404 and response.get_json()["error"], path
    assert pages.get("/editor/models/999").status_code == 404
    assert pages.post("/editor/models/999/activate").status_code == 404


def test_the_shipped_model_is_listed_with_its_metrics(app, client):
    body = client.get("/api/v1/models", headers=api_headers(app, make_user(app, "editor"))).get_json()
    assert len(body) == 1
    shipped = body[0]
    assert shipped["id"] == "shipped" and shipped["is_active"] and shipped["status"] == "ready"
    from ml import bundle as bundles

    info = bundles.read()  # the shipped bundle, read as plain files
    recorded = json.loads((info.path / "metrics.json").read_text())
    assert shipped["version"] == info.version and shipped["classes"] == info.labels
    assert shipped["metrics"]["top1"] == recorded["top1"] and 0.8 < recorded["top1"] <= shipped["metrics"]["top5"] <= 1
    assert shipped["metrics"]["negatives_rejected"] == recorded["rejection"]["negatives_rejected"] > 0.9


# --- pages: the table, a version's report, plots and progress ----------------------------------

def test_versions_side_by_side(app):
    metrics = {"top1": 0.9123, "top5": 0.99, "rejection": {"negatives_rejected": 0.95,
                                                           "landmarks_accepted_correct": 0.88}}
    ready = add_version(app, version="tiny-abc", metrics=metrics, classes=["A", "B", "C"], is_active=True)
    add_version(app, status="failed", error="no photos")
    html = signed_in_client(app, "admin").get("/editor/models").get_data(as_text=True)
    row = html[html.index(f'id="version-{ready}"'):]
    row = row[:row.index("</tr>")]
    for text in ("tiny-abc", "91.2%", "99.0%", "95.0%", "88.0%", ">3<", "active"):
        assert text in row, text
    shipped = html[html.index('id="version-shipped"'):]
    from ml import bundle as bundles

    top1 = json.loads((bundles.read().path / "metrics.json").read_text())["top1"]
    assert f"{top1:.1%}" in shipped and "Use the shipped model" in shipped  # a row is active: the shipped one is not


def test_a_version_page_shows_its_report_escaped_and_its_plots(app):
    bundle = fake_bundle(Path(app.config["MODEL_DIR"]) / "v1", report="# Report\n<script>alert(1)</script>\n")
    version_id = add_version(app, bundle_dir=bundle, version="tiny-xyz")
    client = signed_in_client(app, "editor")
    html = client.get(f"/editor/models/{version_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    for name in ("confusion.png", "rejection.png", "training.png"):
        assert f'src="/editor/models/{version_id}/plots/{name}"' in html
    plot = client.get(f"/editor/models/{version_id}/plots/training.png")
    assert plot.status_code == 200 and plot.mimetype == "image/png" and plot.data == PNG

    shipped = client.get("/editor/models/shipped").get_data(as_text=True)
    assert "top-1" in shipped and 'src="/editor/models/shipped/plots/confusion.png"' in shipped
    assert client.get("/editor/models/shipped/plots/confusion.png").status_code == 200


def test_the_plots_route_serves_only_known_names_from_the_bundle(app, tmp_path):
    bundle = fake_bundle(Path(app.config["MODEL_DIR"]) / "v1")
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"private")
    version_id = add_version(app, bundle_dir=bundle)
    client = signed_in_client(app, "editor")
    base = f"/editor/models/{version_id}/plots/"
    for name in ("secret.txt", "report.md", "other.png", "..%2Foutside.png", "..%2F..%2Foutside.png",
                 "%2E%2E%2Fv1%2Fsecret.txt", "confusion.png%00.txt", "CONFUSION.PNG"):
        response = client.get(base + name)
        refused = 400 if "%00" in name else 404  # a NUL byte never reaches a view (webapp/request_checks.py)
        assert response.status_code == refused and b"private" not in response.data, name
    assert client.get(f"/editor/models/{version_id}/plots/../../../outside.png").status_code == 404

    (bundle / "rejection.png").unlink()
    (bundle / "rejection.png").symlink_to(outside)  # a link out of the bundle is not served either
    assert client.get(base + "rejection.png").status_code == 404
    no_bundle = add_version(app, status="training")
    assert client.get(f"/editor/models/{no_bundle}/plots/confusion.png").status_code == 404


def test_a_training_version_shows_live_progress(app):
    progress = {"phase": "fine_tune", "epoch": 2, "epochs": 5, "message": "fine-tuning",
                "history": [{"epoch": 1, "loss": 1.23456, "accuracy": 0.5, "val_loss": 1.5, "val_accuracy": 0.4},
                            {"epoch": 2, "loss": 0.9, "accuracy": 0.7, "val_loss": 1.1, "val_accuracy": 0.6}]}
    version_id = add_version(app, status="training", progress=progress)
    client = signed_in_client(app, "editor")
    html = client.get(f"/editor/models/{version_id}").get_data(as_text=True)
    assert 'src="/static/js/models.js"' in html
    assert f'data-status-url="/editor/models/{version_id}/status"' in html
    assert "1.2346" in html and "70.0%" in html and "2 / 5" in html
    assert "<script>" not in html.replace('<script type="application/json" id="phase-names">', "")
    status = client.get(f"/editor/models/{version_id}/status").get_json()
    assert status["status"] == "training" and status["progress"] == progress


def test_a_failed_run_shows_its_error(app):
    version_id = add_version(app, status="failed", error="ValueError: <no photos> in dataset")
    html = signed_in_client(app, "editor").get(f"/editor/models/{version_id}").get_data(as_text=True)
    assert "This training failed" in html and "ValueError: &lt;no photos&gt; in dataset" in html
    assert "models.js" not in html


def test_the_progress_script_is_a_static_file():
    script = Path(__file__).resolve().parents[2] / "webapp" / "static" / "js" / "models.js"
    text = script.read_text()
    assert "statusUrl" in text and "2000" in text and "innerHTML" not in text  # text only, never markup


# --- flask models ------------------------------------------------------------------------------

def tiny_bundle(folder: Path) -> dict:
    from ml.bundle import make_tiny_bundle

    info = make_tiny_bundle(folder, ["Alpha_Gate", "Beta_Tower"])
    (folder / "metrics.json").write_text(json.dumps({"bundle": info.version, "top1": 0.75, "top5": 1.0,
                                                     "rejection_curve": [{"threshold": 0.0}] * 50}))
    return {"version": info.version, "labels": info.labels}


def test_register_list_and_activate_from_the_command_line(app, runner, tmp_path):
    bundle = tmp_path / "bundle"
    expected = tiny_bundle(bundle)

    result = runner.invoke(args=["models", "register", str(bundle)])
    assert result.exit_code == 0, result.output
    assert expected["version"] in result.output
    with app.app_context():
        row = db.session.scalars(db.select(ModelVersion)).one()
        assert (row.version, row.status, row.arch, row.classes) == (expected["version"], "ready", "tiny",
                                                                   expected["labels"])
        assert row.bundle_dir == str(bundle.resolve()) and row.metrics["top1"] == 0.75 and not row.is_active
        assert "rejection_curve" not in row.metrics
        version_id = row.id

    duplicate = runner.invoke(args=["models", "register", str(bundle), "--activate"])
    assert duplicate.exit_code != 0 and "already registered" in duplicate.output
    not_a_bundle = runner.invoke(args=["models", "register", str(tmp_path)])
    assert not_a_bundle.exit_code != 0 and "bundle.json is missing" in not_a_bundle.output
    assert active_ids(app) == []

    listed = runner.invoke(args=["models", "list"]).output.splitlines()
    assert listed[0].split()[:2] == [str(version_id), "ready"] and "75.0%" in listed[0]
    assert listed[1].startswith("*") and "shipped" in listed[1]

    assert runner.invoke(args=["models", "activate", str(version_id)]).exit_code == 0
    assert active_ids(app) == [version_id]
    assert runner.invoke(args=["models", "list"]).output.startswith("*")
    assert runner.invoke(args=["models", "activate", "shipped"]).exit_code == 0
    assert active_ids(app) == []
    assert queued_tasks(app, "inference") == [(EMBED_TASK, [None])] * 2
    unknown = runner.invoke(args=["models", "activate", "42"])
    assert unknown.exit_code != 0 and "no model version 42" in unknown.output


def test_register_with_activate(app, runner, tmp_path):
    bundle = tmp_path / "bundle"
    version = tiny_bundle(bundle)["version"]
    add_version(app, is_active=True)
    result = runner.invoke(args=["models", "register", str(bundle), "--activate"])
    assert result.exit_code == 0 and "(active)" in result.output
    with app.app_context():
        registered = db.session.scalars(db.select(ModelVersion).filter_by(version=version)).one()
        assert active_ids(app) == [registered.id] and registered.activated_at is not None
    assert queued_tasks(app, "inference") == [(EMBED_TASK, [None])]


def test_train_from_the_command_line(app, runner):
    result = runner.invoke(args=["models", "train"])
    assert result.exit_code == 0, result.output
    [(name, [version_id])] = queued_tasks(app, "training")
    assert name == TRAIN_TASK and f"version {version_id}" in result.output
    with app.app_context():
        assert db.session.get(ModelVersion, version_id).started_by_id is None
    again = runner.invoke(args=["models", "train"])
    assert again.exit_code != 0 and "still training" in again.output
