"""Things tests build: configurations, apps, catalog rows and images (real or generated)."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_PHOTOS = ROOT.parent / "shared" / "data" / "landmarks-vn20"
CATALOG_FILE = ROOT / "webapp" / "data" / "landmarks.json"

SAMPLE_CATALOG = [
    {"slug": "vinh-ha-long", "class_key": "Vinh_Ha_Long", "name_vi": "Vịnh Hạ Long", "name_en": "Ha Long Bay",
     "province": "Quảng Ninh", "lat": 20.9101, "lon": 107.1839,
     "description_vi": "Vịnh với hàng nghìn đảo đá vôi.", "description_en": "A bay of limestone islands."},
    {"slug": "ho-hoan-kiem", "class_key": "Ho_Hoan_Kiem", "name_vi": "Hồ Hoàn Kiếm", "name_en": "Hoan Kiem Lake",
     "province": "Hà Nội", "lat": 21.0288, "lon": 105.8525,
     "description_vi": "Hồ ở trung tâm Hà Nội.", "description_en": "A lake in the heart of Hanoi."},
    {"slug": "pho-co-hoi-an", "class_key": None, "name_vi": "Phố cổ Hội An", "name_en": "Hoi An Ancient Town",
     "province": "Quảng Nam", "lat": 15.8801, "lon": 108.338,
     "description_vi": "Một thương cảng cổ.", "description_en": "An old trading port."},
]


def make_config(tmp_path: Path, **overrides) -> dict:
    """A complete, isolated configuration under ``tmp_path`` (SQLite + embedded broker)."""
    from config import Config

    celery = dict(Config().CELERY, broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    config = {
        "TESTING": True,
        "SECRET_KEY": "test",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.sqlite'}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "REFERENCE_DIR": str(tmp_path / "references"),
        "MODEL_DIR": str(tmp_path / "models"),
        "CELERY": celery,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,  # tests/webapp/test_security.py turns it on
    }
    config.update(overrides)
    return config


def queued_tasks(app, queue_name: str = "inference") -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on ``queue_name`` of the embedded broker (consumed)."""
    found = []
    with app.extensions["celery"].connection_for_read() as conn:
        queue = conn.SimpleQueue(queue_name)
        while True:
            try:
                message = queue.get(timeout=0.3)
            except queue.Empty:
                return found
            found.append((message.headers["task"], message.payload[0]))
            message.ack()


def build_app(config: dict):
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


# --- images -------------------------------------------------------------------------------

def jpeg_bytes(size=(320, 240), color=(30, 120, 200)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return data[: len(data) // 3]


def pixel_bomb(width=50_000, height=50_000) -> bytes:
    """A valid few-hundred-byte PNG that claims 2.5 gigapixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * (width // 8 + 1) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def sample_photos(per_class: int = 1, classes: int = 3) -> list[tuple[Path | bytes, str | None]]:
    """Photos with the label the shipped model must give them.

    Real photos from ../shared when present, else generated ones. The expected label is None (only a
    finished recognition is checked) for generated photos and when MODEL_BUNDLE names another model.
    """
    if SHARED_PHOTOS.is_dir():
        shipped_model = not os.environ.get("MODEL_BUNDLE")
        folders = sorted(p for p in SHARED_PHOTOS.iterdir() if p.is_dir())[:classes]
        return [(photo, folder.name if shipped_model else None)
                for folder in folders for photo in sorted(folder.glob("*.jpg"))[:per_class]]
    return [(jpeg_bytes(color=(40 * i, 200 - 30 * i, 90)), None) for i in range(classes * per_class)]


def run_in_threads(task, items) -> list:
    """``task(item)`` in one thread per item, all started, then all joined; the threads."""
    import threading

    threads = [threading.Thread(target=task, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return threads


def finished_recognition(label: str | None, top5: list, status: str = "done", error: str | None = None, **values):
    """A recognition row as the worker leaves it (for page and API tests that need no worker); ``values``:
    more columns (tier, suggestions, places ...)."""
    from webapp.extensions import db
    from webapp.models import Landmark, Recognition, utcnow

    rec = Recognition(
        stored_name="0" * 32, sha256="0" * 64, image_format="JPEG", status=status, label=label,
        confidence=top5[0][1] if top5 else None, top5=top5, model_version="vn20-test-1", error=error,
        finished_at=utcnow(),
        landmark=db.session.scalars(db.select(Landmark).filter_by(class_key=label)).first() if label else None,
        **values,
    )
    db.session.add(rec)
    db.session.commit()
    return rec.id


def postgres_url_or_skip() -> str:
    """TEST_DATABASE_URL if PostgreSQL answers there; in CI a missing server fails instead of skipping."""
    return _service_url_or_skip("TEST_DATABASE_URL", _postgres_answers)


def redis_url_or_skip() -> str:
    return _service_url_or_skip("TEST_REDIS_URL", _redis_answers)


def _service_url_or_skip(var: str, answers) -> str:
    import os

    url = os.environ.get(var)
    problem = f"{var} is not set" if not url else answers(url)
    if problem:
        skip_or_fail_under_ci(var, problem)
    return url


def skip_or_fail_under_ci(needed: str, problem: str) -> None:
    """A test without something it needs: skipped on a developer's machine, failed under CI."""
    import os

    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"CI needs {needed}: {problem}")
    pytest.skip(problem)


def _postgres_answers(url: str) -> str | None:
    import sqlalchemy

    from config import database_url

    try:
        with sqlalchemy.create_engine(database_url(url)).connect():
            return None
    except Exception as exc:
        return f"PostgreSQL unreachable at {url}: {exc}"


def _redis_answers(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:
        return f"Redis unreachable at {url}: {exc}"


def tower_photo(seed: int, view: int) -> bytes:
    """Photo ``view`` of a made-up landmark ``seed`` (a tiered tower under a sky; views differ in crop and
    light): a landmark no shipped model was trained on, for few-shot enrolment tests."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    base = Image.new("RGB", (480, 360))
    draw = ImageDraw.Draw(base)
    for y in range(360):
        draw.line([(0, y), (480, y)], fill=(90 + y // 6, 140 + y // 8, 220 - y // 4))
    for tier in range(6):
        w, y = 200 - tier * 28, 330 - tier * 45
        colour = tuple(int(c) for c in rng.integers(40, 230, 3))
        draw.polygon([(220 - w // 2, y), (260 + w // 2, y), (240 + w // 2, y - 40), (240 - w // 2, y - 40)],
                     fill=colour)
    r = np.random.default_rng(1000 + view)
    scale = r.uniform(0.7, 1.0)
    w, h = int(480 * scale), int(360 * scale)
    x0, y0 = int(r.integers(0, 480 - w + 1)), int(r.integers(0, 360 - h + 1))
    arr = np.asarray(base.crop((x0, y0, x0 + w, y0 + h)).resize((320, 240)), np.float32) * r.uniform(0.8, 1.15)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


# --- the learning loop: a made-up landmark and a tiny base dataset for retraining ------------------

TOWER = {"slug": "thap-thu-nghiem", "name_vi": "Tháp thử nghiệm", "name_en": "Test Tower", "province": "Huế",
         "lat": 16.46, "lon": 107.59, "description_vi": "", "description_en": ""}
TINY_TRAINING = {"epochs": 2, "img_size": 32, "batch_size": 8, "patience": 2}  # TRAINING_OPTIONS for lenet5


def tiny_training_dataset(root: Path) -> Path:
    """Two made-up landmarks of 8 photos each, folder per class: a base dataset for retraining."""
    for seed, name in ((31, "Alpha_Gate"), (62, "Beta_Tower")):
        (root / name).mkdir(parents=True)
        for view in range(8):
            (root / name / f"{view}.jpg").write_bytes(tower_photo(seed, view))
    return root
