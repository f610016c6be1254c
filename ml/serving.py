"""A batch of photos → one ``Result`` each: the serving policy, pure (no database; worker/engine.py feeds it).

In order: the model on the whole batch (the int8 fast path first where the bundle has one); the mirror view
where a few-shot signature matters (reference photos, and photos an enrolled landmark may win), from the
float model; signatures and few-shot matching (``ml.fewshot``); where the photo was taken (``ml.location``);
"places that look like this" for the photos that did not get a sure answer (``ml.places``).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from ml.fewshot import FewShotRule, ReferenceIndex, add_mirrors, decide_all, reference_may_win, signature
from ml.location import LocationRule, locate
from ml.places import PlacesRule, similar_places
from ml.result import Result


@dataclass
class Photo:
    array: np.ndarray  # (1, S, S, 3), normalised for the predictor (``Predictor.preprocess``)
    reference: bool = False  # a reference photo: its signature is stored, so it always gets the mirror view
    position: tuple[float, float] | None = None  # where it was taken (EXIF GPS)
    abroad: bool = False  # that position is outside Vietnam


@dataclass
class Knowledge:
    """What the predictor alone does not know: the reference photos, the catalog and the rules."""

    fewshot: FewShotRule
    references: ReferenceIndex | None = None  # the bundle's trained references + the enrolled photos
    enrolled: bool = False  # whether an enrolled landmark is among them (only then can a reference match win)
    places: PlacesRule | None = None
    location: LocationRule = field(default_factory=LocationRule)
    coordinates: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # catalog landmarks by key
    in_catalog: frozenset[str] = frozenset()  # model keys (class keys, enrolled slugs) with a catalog entry


def recognise(predictor, photos: list[Photo], known: Knowledge) -> list[Result]:
    rule = known.fewshot
    index = known.references if known.enrolled else None  # few-shot matching
    batch = np.concatenate([p.array for p in photos])
    started = time.perf_counter()
    predictions = predictor.predict_batch(batch)
    mirrored = [i for i, (photo, p) in enumerate(zip(photos, predictions, strict=True))
                if photo.reference or (index is not None and reference_may_win(p, rule))]
    if mirrored and predictor.fast_path:  # signatures come from the float model (see ml.fastpath)
        for i, exact in zip(mirrored, predictor.predict_batch(batch[mirrored], exact=True), strict=True):
            predictions[i] = exact
    add_mirrors(predictor, batch[mirrored], [predictions[i] for i in mirrored])
    model_ms = (time.perf_counter() - started) * 1000
    signatures = np.stack([signature(p, predictor.labels, rule.profile) for p in predictions])
    scores = index.scores(signatures) if index is not None else None  # matching and places share them
    answers = decide_all(predictions, index, rule, predictor.labels, signatures, scores)
    answers = [locate(a, photo.position, known.coordinates, predictor.tiers, known.location, photo.abroad)
               for photo, a in zip(photos, answers, strict=True)]  # no position: the answer as it is
    unsure = [i for i, (photo, a) in enumerate(zip(photos, answers, strict=True))
              if a.tier != "sure" and not photo.reference]
    places: dict[int, list] = {}
    if unsure and known.references is not None and known.places is not None:
        unsure_scores = scores[unsure] if scores is not None else known.references.scores(signatures[unsure])
        places = dict(zip(unsure, looks_like(known, unsure_scores, [answers[i] for i in unsure]), strict=True))
    return [replace(a, score=float(a.score), top5=[(k, float(v)) for k, v in a.top5], signature=sig,
                    places=places.get(i, []), batch_size=len(photos), model_ms=model_ms,
                    embedding=None, mirror=None)  # what a signature is made of is not needed further
            for i, (a, sig) in enumerate(zip(answers, signatures, strict=True))]


def looks_like(known: Knowledge, scores: np.ndarray, answers: list[Result]) -> list[list]:
    """"Places that look like this" of unsure photos, from their reference ``scores``: catalog landmarks
    only, without the candidates a maybe answer already names."""
    assert known.references is not None and known.places is not None  # recognise calls it only with both
    keys = known.references.keys
    elsewhere = tuple(key for key in keys if key not in known.in_catalog)
    found = []
    for row, answer in zip(scores, answers, strict=True):
        named = tuple(answer.suggestions) if answer.tier == "maybe" else ()
        found.append([[key, similarity] for key, similarity in similar_places(row, keys, known.places,
                                                                                elsewhere + named)])
    return found
