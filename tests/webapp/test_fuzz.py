"""Fuzzing the upload path and the decoder: hostile files get a clear 4xx, never a 5xx.

A few hundred cases per run; ``bench/fuzz.py`` runs the same strategies for 10,000+ cases.
"""
import io
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from ml import images
from testsupport.factories import build_app, make_config
from testsupport.hostile import HOSTILE_NAMES, hostile_files, jpeg_with_size

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
CLEAR_REFUSALS = {400, 413, 415}


def check_decoder(data: bytes) -> None:
    try:
        decoded = images.decode(data, max_pixels=40_000_000, allowed_formats=images.UPLOAD_FORMATS)
    except images.ImageError as err:
        assert str(err)
    else:
        assert decoded.image.mode == "RGB"
        assert min(decoded.image.size) >= images.MIN_SIDE
        assert decoded.format in images.UPLOAD_FORMATS


@FUZZ
@given(hostile_files())
def test_decoder_raises_only_image_errors(case):
    _kind, data = case
    check_decoder(data)


def test_upload_api_never_answers_5xx(tmp_path):
    app = build_app(make_config(tmp_path, MAX_UPLOAD_MB=1))
    client = app.test_client()
    upload_dir = Path(app.config["UPLOAD_DIR"])

    @FUZZ
    @given(hostile_files(), st.sampled_from(HOSTILE_NAMES))
    @example(("JPEG claiming 8x5000", jpeg_with_size(8, 5000)), "x.jpg")  # shown copy: 2×1280, still a JPEG
    def upload(case, name):
        kind, data = case
        resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), name, "text/html")})
        body = resp.get_json()
        assert resp.status_code == 202 or resp.status_code in CLEAR_REFUSALS, (kind, resp.status_code, body)
        text = resp.get_data(as_text=True)
        assert name not in text or not name, "the visitor's file name is echoed"
        assert "text/html" not in text  # nor the type the client claimed
        if resp.status_code == 202:
            stored = upload_dir / _stored_name(app, body["id"])
            with Image.open(stored.with_suffix(".jpg")) as shown:  # what is shown back: our re-encoded copy
                assert shown.format == "JPEG" and not shown.getexif()
                shown.load()
            check_decoder(stored.with_suffix(".orig").read_bytes())  # what the worker will decode
        else:
            assert body["status"] == resp.status_code and body["error"]

    upload()


def test_upload_page_never_answers_5xx(tmp_path):
    client = build_app(make_config(tmp_path)).test_client()

    @settings(FUZZ, max_examples=60)
    @given(hostile_files(), st.sampled_from(HOSTILE_NAMES))
    def upload(case, name):
        kind, data = case
        resp = client.post("/", data={"image": (io.BytesIO(data), name)})
        assert resp.status_code == 303 or resp.status_code in CLEAR_REFUSALS, (kind, resp.status_code)
        if name:
            assert name not in resp.get_data(as_text=True)

    upload()


def _stored_name(app, rec_id: str) -> str:
    from webapp.extensions import db
    from webapp.models import Recognition

    with app.app_context():
        return db.session.get(Recognition, rec_id).stored_name
