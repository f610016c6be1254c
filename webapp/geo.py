"""Offline map helpers: Vietnam's outline as SVG path data and a lon/lat → SVG projection.

The outline comes from the committed ``webapp/data/vietnam_outline.json`` (built once by
``webapp/data/build_outline.py`` from Natural Earth data via the ``world-atlas`` npm
package); nothing here touches the network.

Register the helpers for templates in the app factory::

    from webapp import geo
    geo.init_app(app)

which adds these Jinja globals, used by ``templates/_map.html``:

``vietnam_outline_path()``  SVG ``d`` for Vietnam (mainland and islands)
``neighbours_outline_path()``  SVG ``d`` for neighbouring land, clipped to the frame
``archipelago_markers()``  projected points + names for Hoàng Sa and Trường Sa
``project(lat, lon)``      → ``(x, y)`` in the SVG's viewBox
``map_viewbox``            the viewBox string, e.g. ``"0 0 400 529.1"``
``map_pins(pins)``         normalises pins ({lat, lon, label, url?}) and adds x, y
``spread_pins(points)``    moves pins that would hide one another apart (numbered trip maps)

And for where a photo was taken: ``in_vietnam(lat, lon)`` (the worker's "abroad", ``ml.location``) and
``nearby(origin, places)`` (catalog landmarks near an answered one).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ml.location import haversine_km

OUTLINE_FILE = Path(__file__).parent / "data" / "vietnam_outline.json"

# Map frame in degrees (kept in sync with build_outline.FRAME; checked in tests).
WEST, SOUTH, EAST, NORTH = 101.6, 7.9, 113.6, 23.7
VIEW_WIDTH = 400.0  # SVG user units; the height follows from the projection


def _merc_y(lat: float) -> float:
    """Web Mercator ordinate (radians), the projection OpenStreetMap tiles use."""
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


_SCALE = VIEW_WIDTH / math.radians(EAST - WEST)
VIEW_HEIGHT = round((_merc_y(NORTH) - _merc_y(SOUTH)) * _SCALE, 1)
map_viewbox = f"0 0 {VIEW_WIDTH:g} {VIEW_HEIGHT:g}"


def project(lat: float, lon: float) -> tuple[float, float]:
    """Project a WGS84 point to (x, y) in the map's SVG viewBox (y grows southwards)."""
    x = math.radians(float(lon) - WEST) * _SCALE
    y = (_merc_y(NORTH) - _merc_y(float(lat))) * _SCALE
    return round(x, 2), round(y, 2)


@lru_cache(maxsize=1)
def outline_data() -> dict[str, Any]:
    with OUTLINE_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)


def _path(polygons: Iterable[list[list[list[float]]]]) -> str:
    parts = []
    for polygon in polygons:
        for ring in polygon:
            pts = [project(lat, lon) for lon, lat in ring]
            parts.append("M" + "L".join(f"{x:g},{y:g}" for x, y in pts) + "Z")
    return "".join(parts)


@lru_cache(maxsize=1)
def vietnam_outline_path() -> str:
    """SVG path data (``d``) of Vietnam's land outline in the map's viewBox."""
    return _path(outline_data()["vietnam"])


@lru_cache(maxsize=1)
def neighbours_outline_path() -> str:
    """SVG path data of neighbouring countries' land, clipped to the map frame."""
    return _path(outline_data()["neighbours"])


@lru_cache(maxsize=1)
def archipelago_markers() -> list[dict[str, Any]]:
    """Hoàng Sa / Trường Sa: name and projected island dots, plus a label anchor."""
    out = []
    for arch in outline_data()["archipelagos"]:
        dots = [project(lat, lon) for lon, lat in arch["points"]]
        out.append({
            "name_vi": arch["name_vi"],
            "name_en": arch["name_en"],
            "dots": dots,
            # centred under the dots, kept inside the frame (text-anchor="middle")
            "label_xy": (
                round(min(max(sum(x for x, _ in dots) / len(dots), 40.0), VIEW_WIDTH - 40.0), 2),
                round(max(y for _, y in dots) + 11, 2),
            ),
        })
    return out


def map_pins(pins: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Normalise pins for the map macro: floats for lat/lon (Decimal-safe), str label,
    optional url, number (int) and links ([{label, url}]), and projected x/y. Pins without
    coordinates are skipped."""
    out = []
    for pin in pins or ():
        lat, lon = pin.get("lat"), pin.get("lon")
        if lat is None or lon is None:
            continue
        lat, lon = float(lat), float(lon)
        x, y = project(lat, lon)
        item = {"lat": lat, "lon": lon, "label": str(pin.get("label") or ""), "x": x, "y": y}
        if pin.get("url"):
            item["url"] = str(pin["url"])
        if pin.get("number") is not None:
            item["number"] = int(pin["number"])
        if pin.get("links"):
            item["links"] = [{"label": str(link["label"]), "url": str(link["url"])} for link in pin["links"]]
        out.append(item)
    return out


BORDER_KM = 10.0  # the outline is coarse: this close to one of its points still counts as Vietnam


def in_vietnam(lat: float, lon: float) -> bool:
    """Whether a point is in Vietnam as far as "taken abroad" goes: on its land or within ``BORDER_KM`` of
    its outline, or at sea within the map frame (a boat in Hạ Long Bay is not abroad); not on a
    neighbour's land, nor beyond the frame."""
    if not (SOUTH <= lat <= NORTH and WEST <= lon <= EAST):
        return False
    if any(_in_polygon(polygon, lat, lon) for polygon in _polygons("vietnam")):
        return True
    if float(haversine_km(lat, lon, *_outline_points()).min()) <= BORDER_KM:
        return True
    return not any(_in_polygon(polygon, lat, lon) for polygon in _polygons("neighbours"))


@lru_cache(maxsize=1)
def _outline_points() -> tuple[np.ndarray, np.ndarray]:
    points = np.concatenate([ring for polygon in _polygons("vietnam") for ring in polygon])
    return points[:, 1], points[:, 0]  # lat, lon


@lru_cache(maxsize=2)
def _polygons(name: str) -> list[list[np.ndarray]]:
    return [[np.asarray(ring, np.float64) for ring in polygon] for polygon in outline_data()[name]]


def _in_polygon(rings: list[np.ndarray], lat: float, lon: float) -> bool:
    """Even-odd rule over the polygon's rings ([lon, lat] points; the first the outline, the others holes)."""
    crossings = 0
    for ring in rings:
        x, y = ring[:, 0], ring[:, 1]
        xj, yj = np.roll(x, 1), np.roll(y, 1)
        spans = (y > lat) != (yj > lat)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = xj + (lat - yj) * (x - xj) / (y - yj)
        crossings += int(np.count_nonzero(spans & (lon < at)))
    return crossings % 2 == 1


NEARBY_KM = 25.0  # "Also near here": catalog landmarks within this distance of the answered one
NEARBY_COUNT = 4


def nearby(origin: tuple[float, float], places: Iterable[tuple[Any, float, float]], *,
           radius_km: float = NEARBY_KM, count: int = NEARBY_COUNT) -> list[tuple[Any, float]]:
    """The ``count`` places (``(item, lat, lon)``) nearest to ``origin`` (lat, lon) within ``radius_km``, each
    with its distance in km, nearest first; the origin itself (0 km away) is left out."""
    places = [(item, float(lat), float(lon)) for item, lat, lon in places if lat is not None and lon is not None]
    if not places:
        return []
    km = haversine_km(origin[0], origin[1], [p[1] for p in places], [p[2] for p in places])
    found = sorted((d, i) for i, d in enumerate(km.tolist()) if 0.0 < d <= radius_km)
    return [(places[i][0], round(d, 1)) for d, i in found[:count]]


def spread_pins(points: list[dict[str, Any]], gap: float = 15.0) -> list[dict[str, Any]]:
    """Move pins that would hide an earlier one (closer than ``gap`` viewBox units) to the nearest free place
    on rings around where they belong, so that each numbered pin stays readable; lat/lon are unchanged."""
    placed: list[tuple[float, float]] = []
    out = []
    for point in points:
        x, y = point["x"], point["y"]
        ring, step = 0, 0
        while any(math.hypot(x - px, y - py) < gap for px, py in placed):
            slots = 6 * ring if ring else 1
            if step >= slots:
                ring, step = ring + 1, 0
                continue
            angle = 2 * math.pi * step / slots - math.pi / 2
            x, y = point["x"] + ring * gap * math.cos(angle), point["y"] + ring * gap * math.sin(angle)
            step += 1
        placed.append((x, y))
        out.append({**point, "x": round(x, 2), "y": round(y, 2)})
    return out


def init_app(app) -> None:
    """Expose the map helpers to Jinja templates (call from the app factory)."""
    app.jinja_env.globals.update(
        vietnam_outline_path=vietnam_outline_path,
        neighbours_outline_path=neighbours_outline_path,
        archipelago_markers=archipelago_markers,
        project=project,
        map_viewbox=map_viewbox,
        map_pins=map_pins,
        spread_pins=spread_pins,
    )
