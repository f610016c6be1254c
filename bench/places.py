"""Do "places that look like this" make sense? Measured on landmarks the model never learnt.

    python bench/places.py --bundle runs/lite2-lo10/bundle \
        --data ../shared/data/landmarks-vn20 ../shared/data/landmarks-vn30

A leave-classes-out bundle (``bench/rejection.py``) does not know some of our landmarks. For every
photo of those, the recogniser's suggestions (``ml.places``: the 3 catalog landmarks whose trained
photos it resembles most, when it resembles any enough) are compared with what the photo shows, by
*kind* of place (``KINDS``: a hand-made grouping of the 50 landmarks — karst and water, caves, coast,
mountains and countryside, religious buildings, historic and civic buildings, towns and markets). A
suggestion "makes sense" when it is a place of the same kind; the baseline is 3 landmarks drawn at
random from those the model knows. A small gallery (file names under ``../shared/data``, not the
photos) goes with the numbers into docs/places.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.data import scan  # noqa: E402
from ml.fewshot import FewShotRule, ReferenceIndex, load_references, signature  # noqa: E402
from ml.places import PlacesRule, similar_places  # noqa: E402
from ml.predictor import Predictor  # noqa: E402

KINDS = {
    "karst and water": ["Vinh_Ha_Long", "Trang_An", "Tam_Coc_Bich_Dong", "Song_Huong", "Cho_Noi", "Ho_Ba_Be",
                        "Rung_Tram_Tra_Su", "Thac_Ban_Gioc", "Ho_Hoan_Kiem"],
    "caves": ["Dong_Phong_Nha", "Dong_Thien_Duong", "Hang_Son_Doong", "Hang_Pac_Bo", "Dia_Dao_Cu_Chi"],
    "coast": ["Bai_Sao", "Dao_Phu_Quoc", "Ganh_Da_Dia", "Vinh_Lang_Co", "Dinh_Ban_Co", "Tuong_Chua_Kito_Vua_Vung_Tau"],
    "mountains and countryside": ["Dinh_Fansipan", "Deo_O_Quy_Ho", "Nui_Cam", "Nui_Yen_Tu", "Ruong_Bac_Thang_Sa_Pa",
                                  "Cau_Vang", "Cot_Co_Lung_Cu", "Ngu_Hanh_Son"],
    "religious buildings": ["Chua_Mot_Cot", "Chua_Thien_Mu", "Chua_Bai_Dinh", "Van_Mieu_Quoc_Tu_Giam",
                            "Thanh_Dia_My_Son", "Nha_Tho_Duc_Ba_Sai_Gon", "Nha_Tho_Lon_Ha_Noi", "Nha_Tho_Da_Sa_Pa"],
    "historic and civic buildings": ["Kinh_Thanh_Hue", "Lang_Tu_Duc", "Co_Do_Hoa_Lu", "Lang_Chu_Tich_Ho_Chi_Minh",
                                     "Dinh_Doc_Lap", "Buu_Dien_Sai_Gon", "Ga_Da_Lat", "Ham_Ca_Map"],
    "towns and markets": ["Pho_Co_Hoi_An", "Pho_Co_Ha_Noi", "Cho_Ben_Thanh", "Cho_Bac_Ha", "Quang_Truong_Lam_Vien",
                          "Cong_Vien_Thien_Van_Hoc"],
}
KIND = {key: kind for kind, keys in KINDS.items() for key in keys}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a leave-classes-out bundle")
    ap.add_argument("--data", required=True, nargs="+", action="extend")
    ap.add_argument("--doc", default="docs/places.md")
    args = ap.parse_args()

    predictor = Predictor(args.bundle, runtime="litert", fast_path=False)
    rule, places = FewShotRule.from_bundle(predictor.info.extra), PlacesRule.from_bundle(predictor.info.extra)
    keys, refs = load_references(predictor.info.path)
    index = ReferenceIndex(keys, refs, rule.k)
    dataset = scan(args.data, check_images=False)
    unseen = [s for s in dataset.samples if dataset.classes[s.label] not in predictor.labels]
    missing = sorted({dataset.classes[s.label] for s in dataset.samples} - set(KIND))
    if missing:
        raise SystemExit(f"no kind for: {', '.join(missing)}")
    rows = []
    for start in range(0, len(unseen), 64):
        part = unseen[start: start + 64]
        probs, embeddings = predictor.predict_arrays(predictor.preprocess([s.path for s in part]), exact=True)
        sigs = np.stack([signature(predictor.decide(p, e), predictor.labels, rule.profile)
                         for p, e in zip(probs, embeddings, strict=False)])
        for s, scores in zip(part, index.scores(sigs), strict=False):
            rows.append((s, similar_places(scores, index.keys, places)))
    with_places = [(s, found) for s, found in rows if found]
    truth = lambda s: KIND[dataset.classes[s.label]]  # noqa: E731
    any_same = np.mean([any(KIND[k] == truth(s) for k, _ in found) for s, found in with_places])
    first_same = np.mean([KIND[found[0][0]] == truth(s) for s, found in with_places])
    known = [k for k in predictor.labels if k in KIND]

    def chance(kind: str) -> tuple[float, float]:
        same = sum(KIND[k] == kind for k in known) / len(known)
        n, m = len(known), sum(KIND[k] == kind for k in known)
        none = np.prod([(n - m - i) / (n - i) for i in range(3)])  # no same-kind landmark among 3 drawn
        return same, 1 - none

    base = np.array([chance(truth(s)) for s, _ in with_places])
    lines = ["# Places that look like this", "",
             f"Measured by `python bench/places.py` with bundle `{predictor.version}`, which never learnt "
             f"{', '.join(sorted({dataset.classes[s.label] for s in unseen}))} ({len(unseen)} photos). "
             "Kinds of place: `bench/places.py` (`KINDS`).", "",
             "| measure | suggestions | 3 random known landmarks |", "|---|---|---|",
             f"| photos that get suggestions | {len(with_places) / len(rows):.1%} | — |",
             f"| the first suggestion is a place of the same kind | {first_same:.1%} | {base[:, 0].mean():.1%} |",
             f"| one of the 3 is a place of the same kind | {any_same:.1%} | {base[:, 1].mean():.1%} |", "",
             "## Examples (one photo per never-learnt landmark)", "",
             "| photo (under `../shared/data`) | shows | suggested: places that look like it |", "|---|---|---|"]
    seen = set()
    for s, found in with_places:
        name = dataset.classes[s.label]
        if name in seen:
            continue
        seen.add(name)
        shown = ", ".join(f"{k} ({KIND[k]}, {sim:.2f})" for k, sim in found)
        lines.append(f"| `{Path(s.path).parent.parent.name}/{name}/{Path(s.path).name}` "
                     f"| {name} ({KIND[name]}) | {shown} |")
    Path(args.doc).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
