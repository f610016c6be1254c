"""Sure / maybe / unknown and "places that look like this" through the real worker path (in-process):
a tiny untrained bundle whose tiers and trained references the tests choose."""
import io
import shutil

import pytest

from testsupport.factories import SAMPLE_CATALOG, build_app, make_config, tower_photo
from webapp.extensions import db
from webapp.models import Landmark, Recognition
from worker.tasks import recognize

LABELS = ["Vinh_Ha_Long", "Ho_Hoan_Kiem", "Cau_Vang", "Cho_Noi", "Not_In_Catalog"]
CATALOG = SAMPLE_CATALOG + [
    dict(SAMPLE_CATALOG[0], slug="cau-vang", class_key="Cau_Vang", name_vi="Cầu Vàng", name_en="Golden Bridge"),
    dict(SAMPLE_CATALOG[0], slug="cho-noi", class_key="Cho_Noi", name_vi="Chợ nổi", name_en="Floating Market"),
]
PHOTOS = {key: tower_photo(seed, 0) for seed, key in enumerate(LABELS, start=11)}  # one trained photo per landmark
SURE, MAYBE, UNKNOWN = ({"sure": 0.0, "maybe": 0.0}, {"sure": 1.01, "maybe": 0.0, "second": 0.0},
                        {"sure": 1.01, "maybe": 1.01})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny bundle without references, and its trained references: each landmark's photo's signature."""
    from ml.bundle import make_tiny_bundle
    from ml.fewshot import FewShotRule, signature
    from ml.images import decode
    from ml.predictor import Predictor

    path = tmp_path_factory.mktemp("tiers") / "plain"
    make_tiny_bundle(path, LABELS)
    predictor = Predictor(path, runtime="litert")
    predictions = predictor.predict([decode(PHOTOS[key]).image for key in LABELS])
    signatures = [signature(p, LABELS, FewShotRule().profile) for p in predictions]
    return path, signatures


def bundle(tiny, tmp_path, tiers: dict, references: bool = True, **settings) -> str:
    from ml import bundle as bundles
    from ml.fewshot import save_references

    path, signatures = tiny
    out = tmp_path / "bundle"
    shutil.copytree(path, out)
    if references:
        save_references(out, LABELS, signatures)
    bundles.update(out, tiers=tiers, **settings)
    return str(out)


def serving(bundle_dir: str, tmp_path):
    from webapp.cli import upsert_landmarks

    app = build_app(make_config(tmp_path, MODEL_BUNDLE=bundle_dir, MODEL_CHECK_S=0))
    with app.app_context():
        upsert_landmarks(CATALOG)
    return app


def recognise(app, data: bytes) -> Recognition:
    resp = app.test_client().post("/api/v1/recognitions", data={"image": (io.BytesIO(data), "photo.jpg")})
    rec_id = resp.get_json()["id"]
    with app.app_context():
        assert recognize.apply(args=[rec_id]).get() == "done"
        rec = db.session.get(Recognition, rec_id)
        db.session.expunge(rec)
        return rec


def test_a_sure_answer_names_its_landmark_and_suggests_no_places(tiny, tmp_path):
    app = serving(bundle(tiny, tmp_path, SURE), tmp_path)
    rec = recognise(app, PHOTOS["Ho_Hoan_Kiem"])
    assert rec.tier == "sure" and rec.label == rec.top5[0][0] and rec.suggestions == [rec.label]
    assert rec.places == []


def test_an_unknown_answer_gives_the_closest_landmarks_and_places_from_the_catalog(tiny, tmp_path):
    app = serving(bundle(tiny, tmp_path, UNKNOWN), tmp_path)
    rec = recognise(app, PHOTOS["Ho_Hoan_Kiem"])
    assert (rec.tier, rec.label, rec.landmark_id) == ("unknown", None, None)
    assert rec.suggestions == [key for key, _ in rec.top5[:3]]
    keys = [key for key, _ in rec.places]
    assert keys[0] == "Ho_Hoan_Kiem" and rec.places[0][1] > 0.99  # its own trained photo
    assert len(keys) == 3 and "Not_In_Catalog" not in keys  # a place must have a catalog page
    similarities = [sim for _, sim in rec.places]
    assert similarities == sorted(similarities, reverse=True)
    body = app.test_client().get(f"/api/v1/recognitions/{rec.id}").get_json()
    assert [p["slug"] for p in body["places"]] == ["ho-hoan-kiem"] + [p["slug"] for p in body["places"][1:]]


def test_a_maybe_answer_names_its_candidates_and_leaves_them_out_of_the_places(tiny, tmp_path):
    app = serving(bundle(tiny, tmp_path, MAYBE), tmp_path)
    rec = recognise(app, PHOTOS["Cau_Vang"])
    top = [key for key, _ in rec.top5]
    assert rec.tier == "maybe" and rec.suggestions == top[:2] and rec.label == top[0]
    with app.app_context():  # the best candidate's landmark: feedback and the review queue name it
        assert rec.landmark_id == (db.session.scalars(db.select(Landmark.id).filter_by(class_key=top[0])).first())
    keys = [key for key, _ in rec.places]
    assert keys and not set(keys) & set(rec.suggestions) and "Not_In_Catalog" not in keys
    if "Cau_Vang" not in rec.suggestions:
        assert keys[0] == "Cau_Vang"
    body = app.test_client().get(f"/api/v1/recognitions/{rec.id}").get_json()
    assert (body["tier"], body["landmark"]) == ("maybe", None)
    assert [s["key"] for s in body["suggestions"]] == rec.suggestions


def test_places_need_the_similarity_floor_and_the_bundles_references(tiny, tmp_path):
    (tmp_path / "floor").mkdir(), (tmp_path / "none").mkdir()
    strict = serving(bundle(tiny, tmp_path / "floor", UNKNOWN, places={"min_similarity": 1.01}), tmp_path / "floor")
    assert recognise(strict, PHOTOS["Ho_Hoan_Kiem"]).places == []  # looks like no landmark's photos enough
    plain = serving(bundle(tiny, tmp_path / "none", UNKNOWN, references=False), tmp_path / "none")
    rec = recognise(plain, PHOTOS["Ho_Hoan_Kiem"])
    assert rec.tier == "unknown" and rec.places == []  # a bundle without references.npz: no places


def test_an_enrolled_landmark_is_a_maybe_never_a_sure_answer(tiny, tmp_path):
    from werkzeug.datastructures import FileStorage

    from testsupport.factories import TOWER
    from webapp.references import add_reference_photos
    from worker.tasks import embed_references

    app = serving(bundle(tiny, tmp_path, SURE), tmp_path)
    enrolled = tower_photo(99, 0)
    with app.app_context():
        landmark = Landmark(**TOWER)
        db.session.add(landmark)
        db.session.commit()
        photos = add_reference_photos(landmark, [FileStorage(io.BytesIO(enrolled), filename="t.jpg")], None)
        ids = [p.id for p in photos]
        assert embed_references.apply(args=[ids]).get() == 1
    rec = recognise(app, enrolled)
    assert (rec.matched_by, rec.tier, rec.label) == ("reference", "maybe", TOWER["slug"])
    assert rec.suggestions == [TOWER["slug"]]
    assert TOWER["slug"] not in [key for key, _ in rec.places]
    body = app.test_client().get(f"/api/v1/recognitions/{rec.id}").get_json()
    assert body["landmark"] is None and body["suggestions"][0]["slug"] == TOWER["slug"]
