"""ml.location: the photo's GPS position as evidence (a pure function of an answer, the catalog and a rule)."""
import numpy as np
import pytest

from ml.location import LocationRule, haversine_km, locate
from ml.result import Result
from ml.tiers import TierRule, answer

TIERS = TierRule(sure=0.575, maybe=0.185)
RULE = LocationRule()
CATALOG = {"Chua_Mot_Cot": (21.0359, 105.8336), "Van_Mieu": (21.0293, 105.8361),
           "Chua_Thien_Mu": (16.4537, 107.5446), "Cho_Ben_Thanh": (10.7725, 106.6980),
           "Vinh_Ha_Long": (20.9101, 107.1839)}
NEAR_MOT_COT = (21.0395, 105.8336)  # 0.4 km north of it
VINH = (18.6796, 105.6813)  # a town far from every landmark above
DELHI = (28.6129, 77.2295)


def classified(*top5, matched_by="classifier") -> Result:
    found = answer(list(top5), TIERS)
    label = found.suggestions[0] if found.tier != "unknown" else None
    return Result(label, top5[0][1], list(top5), found.tier, found.suggestions, matched_by=matched_by)


def test_haversine_matches_known_distances():
    assert haversine_km(*CATALOG["Chua_Mot_Cot"], *NEAR_MOT_COT) == pytest.approx(0.4, abs=0.01)
    assert haversine_km(*CATALOG["Chua_Mot_Cot"], *CATALOG["Cho_Ben_Thanh"]) == pytest.approx(1142, rel=0.01)


def test_no_position_is_the_answer_itself():
    rng = np.random.default_rng(0)
    keys = list(CATALOG)
    for _ in range(200):
        probs = rng.dirichlet(np.full(len(keys) + 1, 0.3))[: len(keys)]
        d = classified(*sorted(zip(keys, probs.tolist(), strict=False), key=lambda kp: -kp[1]))
        before = (d.label, d.score, list(d.top5), d.tier, list(d.suggestions))
        located = locate(d, None, CATALOG, TIERS, RULE)
        assert located is d and located.position is None and located.distance_km is None
        assert (d.label, d.score, d.top5, d.tier, d.suggestions) == before


def test_the_nearby_candidate_is_favoured():
    d = classified(("Chua_Thien_Mu", 0.40), ("Chua_Mot_Cot", 0.35), ("Cho_Ben_Thanh", 0.05))
    assert d.suggestions[0] == "Chua_Thien_Mu"
    located = locate(d, NEAR_MOT_COT, CATALOG, TIERS, RULE)
    assert located.position == "near"
    assert located.suggestions[0] == "Chua_Mot_Cot"
    assert located.tier != "sure"  # the picture alone preferred another landmark
    assert located.distance_km == pytest.approx(0.4, abs=0.01)


def test_a_position_that_agrees_with_the_picture_can_make_it_sure():
    d = classified(("Chua_Mot_Cot", 0.55), ("Chua_Thien_Mu", 0.30))
    assert d.tier == "maybe"
    located = locate(d, NEAR_MOT_COT, CATALOG, TIERS, RULE)
    assert (located.tier, located.label) == ("sure", "Chua_Mot_Cot")
    assert located.score > 0.55


def test_far_from_every_landmark_is_never_sure():
    d = classified(("Chua_Mot_Cot", 0.97), ("Van_Mieu", 0.01))
    located = locate(d, VINH, CATALOG, TIERS, RULE)
    assert located.position == "far"
    assert located.tier == "maybe" and located.suggestions[0] == "Chua_Mot_Cot"
    assert located.distance_km == pytest.approx(haversine_km(*VINH, *CATALOG["Chua_Mot_Cot"]), abs=0.01)


def test_abroad_is_not_a_landmark_we_know_unless_unmistakable():
    plausible = locate(classified(("Chua_Thien_Mu", 0.5), ("Van_Mieu", 0.2)), DELHI, CATALOG, TIERS, RULE, abroad=True)
    assert plausible.position == "abroad"
    assert plausible.tier == "unknown" and plausible.label is None
    assert plausible.distance_km is None
    clear = locate(classified(("Chua_Thien_Mu", 0.99), ("Van_Mieu", 0.005)), DELHI, CATALOG, TIERS, RULE, abroad=True)
    assert (clear.position, clear.tier, clear.suggestions[0]) == ("abroad", "maybe", "Chua_Thien_Mu")
    # abroad but within reach of a landmark (the far bank of a border river): near, as anywhere else
    border = locate(classified(("Chua_Mot_Cot", 0.9)), NEAR_MOT_COT, CATALOG, TIERS, RULE, abroad=True)
    assert (border.position, border.tier) == ("near", "sure")


def test_wrong_gps_never_turns_a_clear_right_answer_into_a_wrong_sure_one():
    rng = np.random.default_rng(1)
    keys = list(CATALOG)
    checked = 0
    for _ in range(500):
        probs = rng.dirichlet(np.full(len(keys) + 1, 0.2))[: len(keys)]
        d = classified(*sorted(zip(keys, probs.tolist(), strict=False), key=lambda kp: -kp[1]))
        if d.tier != "sure":
            continue
        for _key, spot in CATALOG.items():  # the phone says it was taken at another landmark
            located = locate(d, spot, CATALOG, TIERS, RULE)
            assert located.tier != "sure" or located.label == d.label
            checked += 1
    assert checked > 100


def test_a_clear_answer_survives_a_wrong_position_as_at_least_a_maybe():
    d = classified(("Cho_Ben_Thanh", 0.9), ("Chua_Mot_Cot", 0.02))
    located = locate(d, NEAR_MOT_COT, CATALOG, TIERS, RULE)  # 1,100 km away from the market
    assert located.tier in ("sure", "maybe") and located.suggestions[0] == "Cho_Ben_Thanh"


def test_a_reference_match_abroad_is_not_known():
    d = Result("den-ngoc-son", 0.7, [("Van_Mieu", 0.3)], "maybe", ["den-ngoc-son"], matched_by="reference")
    assert locate(d, DELHI, CATALOG, TIERS, RULE, abroad=True).tier == "unknown"
    kept = locate(d, NEAR_MOT_COT, CATALOG, TIERS, RULE)
    assert (kept.label, kept.score, kept.tier, kept.suggestions) == (d.label, d.score, d.tier, d.suggestions)
    assert kept.position == "near" and kept.distance_km is None  # not in the catalog
    assert d.position is None  # the answer it was given is left as it was
