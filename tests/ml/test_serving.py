"""ml.serving: a batch of photos → one result each, the worker's policy without a database."""
import numpy as np

from ml.fewshot import FewShotRule, ReferenceIndex
from ml.predictor import Predictor
from ml.serving import Knowledge, Photo, looks_like, recognise
from testsupport.ml_samples import pattern


def photos(predictor, kinds, **values):
    return [Photo(predictor.preprocess([pattern(kind, seed=50 + i)]), **values) for i, kind in enumerate(kinds)]


def test_without_references_or_positions_the_classifier_answers_each_photo(tiny_bundle):
    predictor = Predictor(tiny_bundle, runtime="litert")
    batch = photos(predictor, [0, 1, 0])
    results = recognise(predictor, batch, Knowledge(FewShotRule()))
    alone = predictor.predict_batch(np.concatenate([p.array for p in batch]))
    assert [(r.label, r.tier, r.batch_size, r.version) for r in results] == [
        (p.label, p.tier, 3, predictor.version) for p in alone]
    assert [r.top5[0][0] for r in results] == [p.top5[0][0] for p in alone]
    assert all(r.matched_by == "classifier" and r.position is None and r.places == [] for r in results)


def test_a_photo_taken_abroad_is_never_sure_and_says_where(tiny_bundle):
    predictor = Predictor(tiny_bundle, runtime="litert")
    catalog = {key: (21.03, 105.83) for key in predictor.labels}  # every landmark in Hà Nội
    known = Knowledge(FewShotRule(), coordinates=catalog, in_catalog=frozenset(catalog))
    results = recognise(predictor, photos(predictor, [0, 1], position=(48.86, 2.35), abroad=True), known)
    assert [r.position for r in results] == ["abroad", "abroad"]
    assert all(r.tier != "sure" for r in results)


def test_places_that_look_like_this_leave_out_landmarks_outside_the_catalog():
    from ml.places import PlacesRule
    from ml.result import Result

    index = ReferenceIndex(["Alpha_Gate", "Beta_Tower", "Taj_Mahal"], np.eye(3, dtype=np.float32), k=1)
    known = Knowledge(FewShotRule(), index, places=PlacesRule(min_similarity=0.0, count=3),
                      in_catalog=frozenset({"Alpha_Gate", "Beta_Tower"}))
    unknown = Result(None, 0.2, [("Alpha_Gate", 0.2)], tier="unknown")
    maybe = Result("Beta_Tower", 0.5, [("Beta_Tower", 0.5)], tier="maybe", suggestions=["Beta_Tower"])
    scores = np.array([[0.7, 0.6, 0.9], [0.7, 0.6, 0.9]], np.float32)  # the foreign landmark looks closest
    unknown_places, maybe_places = looks_like(known, scores, [unknown, maybe])
    assert [key for key, _ in unknown_places] == ["Alpha_Gate", "Beta_Tower"]
    assert [key for key, _ in maybe_places] == ["Alpha_Gate"]  # a maybe's own candidate is not repeated
