"""Build ``webapp/data/vietnam_outline.json`` — the offline map's outline data.

This is a one-off *build* step; the web app only reads the committed JSON at runtime
(see ``webapp/geo.py``) and never imports this script.

Source: the ``world-atlas`` npm package (version 2.0.2, ISC licence, (c) Michael
Bostock), TopoJSON built from Natural Earth 1:10m Admin 0 countries (public domain,
https://www.naturalearthdata.com/). Reproduce with::

    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python webapp/data/build_outline.py /tmp/package/countries-10m.json

What it does:
  1. decodes the TopoJSON arcs (quantised, delta-encoded) into lon/lat rings;
  2. keeps Vietnam (ISO numeric 704) and, as grey context, the neighbouring land
     clipped to the map's frame;
  3. drops islets smaller than ``MIN_AREA`` and simplifies every ring with
     Douglas-Peucker (``TOLERANCE`` degrees);
  4. adds point markers for the Hoàng Sa (Paracel) and Trường Sa (Spratly)
     archipelagos, which Natural Earth does not attribute to Vietnam;
  5. writes compact JSON (4 decimals) next to this script.

Standard library only.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

OUT = Path(__file__).with_name("vietnam_outline.json")

# Map frame (lon/lat): mainland Vietnam plus room for both archipelagos.
FRAME = (101.6, 7.9, 113.6, 23.7)  # west, south, east, north
TOLERANCE = 0.02  # degrees (~2 km) for Douglas-Peucker
MIN_AREA = 0.002  # square degrees (~20 km²): keeps Phú Quốc, Cát Bà, Côn Sơn; drops islets
NEIGHBOUR_TOLERANCE = 0.04
NEIGHBOUR_MIN_AREA = 0.02

# Representative islands (lon, lat), from their charted positions.
ARCHIPELAGOS = [
    {
        "name_vi": "Quần đảo Hoàng Sa",
        "name_en": "Paracel Islands (Hoàng Sa)",
        "points": [
            [111.6103, 16.5327],  # đảo Hoàng Sa (Pattle)
            [112.3364, 16.8339],  # đảo Phú Lâm (Woody)
            [111.7486, 16.4550],  # đảo Quang Hòa (Duncan)
            [111.2000, 15.7800],  # đảo Tri Tôn (Triton)
            [112.7330, 16.6670],  # đảo Linh Côn (Lincoln)
        ],
    },
    {
        "name_vi": "Quần đảo Trường Sa",
        "name_en": "Spratly Islands (Trường Sa)",
        "points": [
            [111.9200, 8.6450],  # đảo Trường Sa Lớn (Spratly Island)
            [112.9167, 9.7167],  # đảo Sinh Tồn (Sin Cowe)
            [114.3556, 11.0539],  # đảo Song Tử Tây (Southwest Cay)
            [114.3667, 10.3833],  # đảo Nam Yết (Namyit)
            [113.0333, 10.6667],  # khu vực Đá Lớn
        ],
    },
]


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring_from_arcs(indices: list[int], arcs) -> list[tuple[float, float]]:
    ring: list[tuple[float, float]] = []
    for i in indices:
        pts = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        ring.extend(pts if not ring else pts[1:])
    return ring


def geometry_polygons(geom: dict, arcs) -> list[list[list[tuple[float, float]]]]:
    if geom["type"] == "Polygon":
        return [[ring_from_arcs(r, arcs) for r in geom["arcs"]]]
    if geom["type"] == "MultiPolygon":
        return [[ring_from_arcs(r, arcs) for r in poly] for poly in geom["arcs"]]
    return []


def area(ring) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True))) / 2


def douglas_peucker(points, tol):
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        a, b = stack.pop()
        (ax, ay), (bx, by) = points[a], points[b]
        dx, dy = bx - ax, by - ay
        norm = math.hypot(dx, dy)
        best, best_i = -1.0, -1
        for i in range(a + 1, b):
            px, py = points[i]
            d = (abs(dy * px - dx * py + bx * ay - by * ax) / norm) if norm else math.hypot(px - ax, py - ay)
            if d > best:
                best, best_i = d, i
        if best > tol:
            keep[best_i] = True
            stack += [(a, best_i), (best_i, b)]
    return [p for p, k in zip(points, keep, strict=False) if k]


def simplify_ring(ring, tol):
    # split the closed ring at its farthest point from the start so both halves simplify well
    if ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(ring) < 4:
        return ring
    far = max(range(len(ring)), key=lambda i: math.hypot(ring[i][0] - ring[0][0], ring[i][1] - ring[0][1]))
    first = douglas_peucker(ring[: far + 1], tol)
    second = douglas_peucker(ring[far:] + ring[:1], tol)
    return first[:-1] + second[:-1]


def clip_ring(ring, frame):
    """Sutherland-Hodgman clip of a ring against the frame rectangle."""
    west, south, east, north = frame
    edges = [
        (lambda p: p[0] >= west, lambda p, q: (west, p[1] + (q[1] - p[1]) * (west - p[0]) / (q[0] - p[0]))),
        (lambda p: p[0] <= east, lambda p, q: (east, p[1] + (q[1] - p[1]) * (east - p[0]) / (q[0] - p[0]))),
        (lambda p: p[1] >= south, lambda p, q: (p[0] + (q[0] - p[0]) * (south - p[1]) / (q[1] - p[1]), south)),
        (lambda p: p[1] <= north, lambda p, q: (p[0] + (q[0] - p[0]) * (north - p[1]) / (q[1] - p[1]), north)),
    ]
    out = list(ring)
    for inside, cross in edges:
        src, out = out, []
        for i, cur in enumerate(src):
            prev = src[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        if not out:
            break
    return out


def bbox_hits(ring, frame) -> bool:
    west, south, east, north = frame
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs) <= east and max(xs) >= west and min(ys) <= north and max(ys) >= south


def compact(ring):
    return [[round(x, 4), round(y, 4)] for x, y in ring]


def build(topo_path: Path) -> dict:
    topo = json.loads(topo_path.read_text())
    arcs = decode_arcs(topo)
    vietnam, neighbours = [], []
    for geom in topo["objects"]["countries"]["geometries"]:
        is_vn = str(geom.get("id")) == "704"
        for poly in geometry_polygons(geom, arcs):
            if is_vn:
                rings = [simplify_ring(r, TOLERANCE) for r in poly if area(r) >= MIN_AREA]
                rings = [r for r in rings if len(r) >= 4]
                if rings and area(poly[0]) >= MIN_AREA:
                    vietnam.append([compact(r) for r in rings])
            elif bbox_hits(poly[0], FRAME) and area(poly[0]) >= NEIGHBOUR_MIN_AREA:
                outer = clip_ring(simplify_ring(poly[0], NEIGHBOUR_TOLERANCE), FRAME)
                if len(outer) >= 3 and area(outer) >= NEIGHBOUR_MIN_AREA:
                    neighbours.append([compact(outer)])
    vietnam.sort(key=lambda p: -area(p[0]))
    return {
        "source": "world-atlas@2.0.2 (npm), countries-10m.json, derived from Natural Earth 1:10m Admin 0 countries",
        "licence": "Natural Earth: public domain; world-atlas packaging: ISC, (c) 2013-2019 Michael Bostock",
        "generated_by": "webapp/data/build_outline.py",
        "tolerance_deg": TOLERANCE,
        "frame": list(FRAME),
        "vietnam": vietnam,
        "neighbours": neighbours,
        "archipelagos": ARCHIPELAGOS,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    data = build(Path(argv[1]))
    OUT.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    n = sum(len(r) for p in data["vietnam"] for r in p)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(data['vietnam'])} Vietnam polygons, {n} points, "
          f"{len(data['neighbours'])} neighbour polygons")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
