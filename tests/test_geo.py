"""The offline map helpers (webapp/geo.py) and the committed outline data."""
import re

import pytest

from webapp import geo


def test_outline_data_has_source_and_licence():
    data = geo.outline_data()
    assert "Natural Earth" in data["source"] and data["licence"]
    assert data["frame"] == [geo.WEST, geo.SOUTH, geo.EAST, geo.NORTH]
    assert len(data["vietnam"]) >= 1 and len(data["vietnam"][0][0]) > 200


def test_project_orientation():
    hanoi, hue, saigon = geo.project(21.0288, 105.8525), geo.project(16.4698, 107.5786), geo.project(10.7725, 106.6980)
    w, h = (float(v) for v in geo.map_viewbox.split()[2:])
    for x, y in (hanoi, hue, saigon):
        assert 0 < x < w and 0 < y < h
    assert hanoi[1] < hue[1] < saigon[1]  # north at the top
    assert hanoi[0] < hue[0]  # Huế lies east of Hà Nội
    assert geo.project(geo.NORTH, geo.WEST) == (0, 0)


def test_outline_path_is_svg_path_data():
    d = geo.vietnam_outline_path()
    assert d.startswith("M") and d.endswith("Z")
    assert re.fullmatch(r"[MLZ0-9.,\-]+", d)
    assert re.fullmatch(r"[MLZ0-9.,\-]*", geo.neighbours_outline_path())


def test_map_pins_normalises_and_skips_missing():
    from decimal import Decimal

    pins = geo.map_pins([
        {"lat": Decimal("21.0288"), "lon": Decimal("105.8525"), "label": "Hồ Hoàn Kiếm",
         "url": "/landmarks/ho-hoan-kiem"},
        {"lat": None, "lon": 105.0, "label": "no position"},
        {"lat": 10.7725, "lon": 106.698, "label": "Chợ Bến Thành"},
    ])
    assert [p["label"] for p in pins] == ["Hồ Hoàn Kiếm", "Chợ Bến Thành"]
    assert pins[0]["lat"] == pytest.approx(21.0288) and "url" in pins[0] and "url" not in pins[1]
    assert (pins[0]["x"], pins[0]["y"]) == geo.project(21.0288, 105.8525)


def test_map_macro_renders_svg_pins_without_inline_code():
    from flask import Flask, render_template_string

    app = Flask("webapp")  # uses webapp/templates and webapp/static
    geo.init_app(app)
    with app.test_request_context():
        html = render_template_string(
            '{% from "_map.html" import map %}{{ map(pins) }}',
            pins=[{"lat": 16.4698, "lon": 107.5786, "label": "Kinh thành <Huế>", "url": "/landmarks/kinh-thanh-hue"}],
        )
    assert "<svg" in html and 'class="vn-map__land"' in html
    assert "Kinh thành &lt;Huế&gt;" in html  # escaped in the SVG
    block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1)
    assert "<" not in block and "\\u003c" in block  # escaped in the JSON block
    assert 'href="/landmarks/kinh-thanh-hue"' in html
    assert "/static/vendor/leaflet/leaflet.js" in html and "/static/js/map.js" in html
    assert not re.search(r"\s(style|on[a-z]+)=", html)  # CSP: no inline styles or handlers
    for script in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in script or 'type="application/json"' in script


def test_in_vietnam_knows_land_sea_and_neighbours():
    from webapp.geo import in_vietnam

    inside = {"Hà Nội": (21.0285, 105.8542), "a boat in Hạ Long Bay": (20.85, 107.1), "off Phú Quốc": (10.0, 103.7),
              "Móng Cái, on the coarse border": (21.52, 107.96), "Cà Mau": (9.1769, 105.1524)}
    outside = {"Nanning": (22.82, 108.32), "Vientiane": (17.97, 102.6), "Phnom Penh": (11.56, 104.92),
               "Bangkok": (13.75, 100.5), "New Delhi": (28.6129, 77.2295), "Paris": (48.8566, 2.3522)}
    assert all(in_vietnam(*spot) for spot in inside.values())
    assert not any(in_vietnam(*spot) for spot in outside.values())


def test_nearby_lists_the_closest_within_the_radius_without_the_origin():
    from webapp.geo import nearby

    mot_cot = (21.0359, 105.8336)
    places = [("Chùa Một Cột", *mot_cot), ("Lăng Bác", 21.0368, 105.8346), ("Văn Miếu", 21.0293, 105.8361),
              ("Hồ Hoàn Kiếm", 21.0288, 105.8525), ("Vịnh Hạ Long", 20.9101, 107.1839), ("no position", None, None)]
    found = nearby(mot_cot, places)
    assert [name for name, _ in found] == ["Lăng Bác", "Văn Miếu", "Hồ Hoàn Kiếm"]
    assert [km for _, km in found] == [0.1, 0.8, 2.1]
    assert nearby(mot_cot, places, count=1) == [("Lăng Bác", 0.1)]
    assert nearby(mot_cot, places, radius_km=0.5) == [("Lăng Bác", 0.1)]


def test_numbered_pins_that_would_hide_each_other_are_spread_apart():
    import math

    from webapp.geo import map_pins, spread_pins

    hanoi = [{"lat": 21.0359, "lon": 105.8336, "number": 1}, {"lat": 21.0288, "lon": 105.8525, "number": 2},
             {"lat": 21.0277, "lon": 105.8355, "number": 3}, {"lat": 20.91, "lon": 107.18, "number": 4}]
    points = map_pins(hanoi)
    spread = spread_pins(points, gap=15)
    assert [p["number"] for p in spread] == [1, 2, 3, 4]
    assert spread[0] == points[0] and spread[3] == points[3]  # alone where they belong: unmoved
    for i, a in enumerate(spread):
        for b in spread[i + 1:]:
            assert math.hypot(a["x"] - b["x"], a["y"] - b["y"]) >= 15 - 0.01
    assert all(math.hypot(p["x"] - q["x"], p["y"] - q["y"]) <= 30
               for p, q in zip(spread, points, strict=False))  # still near
    assert [(p["lat"], p["lon"]) for p in spread] == [(p["lat"], p["lon"]) for p in points]
