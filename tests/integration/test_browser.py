"""One real browser: open the home page, upload a photo, see the landmark's name on the result page; then a
"maybe" result page with places that look like the photo."""
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from testsupport.factories import sample_photos

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def live_url(embedded_stack):
    server = make_server("127.0.0.1", 0, embedded_stack.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_upload_a_photo_and_see_the_landmark(embedded_stack, live_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    photo, class_key = sample_photos(per_class=1, classes=1)[0]
    if not isinstance(photo, Path):
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(sample_photos(per_class=1, classes=1)[0][0])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US")
        page.route(lambda url: not url.startswith(live_url), lambda route: route.abort())  # nothing leaves the machine
        console = []  # Chromium reports Content-Security-Policy violations on the console
        page.on("console", lambda msg: console.append(msg.text))
        page.on("pageerror", lambda err: console.append(str(err)))
        page.goto(live_url + "/")
        expect(page.locator("h1")).to_have_text("Which landmark is this?")
        page.set_input_files("#image", str(photo))
        page.click("button[type=submit]")
        page.wait_for_url("**/r/*")
        verdict = page.locator(".verdict h1")
        expect(verdict).to_be_visible(timeout=240_000)  # the polling script reloads when the worker is done
        if class_key:  # "This is X", or "It might be X" when the model is not sure
            expect(verdict).to_contain_text(_english_name(embedded_stack, class_key))
        page.screenshot(path=str(tmp_path / "result.png"), full_page=True)
        page.goto(live_url + f"/r/{_maybe_result(embedded_stack, page.url.rsplit('/r/', 1)[1])}")
        first, second = (_english_name(embedded_stack, key) for key in ("Vinh_Ha_Long", "Trang_An"))
        expect(page.locator("h1.tentative")).to_have_text(f"It might be {first} (or {second})")
        expect(page.locator(".landmark-name")).to_have_count(0)
        cards = page.locator(".place-card")
        expect(cards).to_have_count(3)
        expect(cards.first).to_contain_text(_english_name(embedded_stack, "Pho_Co_Hoi_An"))
        expect(cards.first.locator("img")).to_have_js_property("complete", True)
        assert cards.first.locator("img").evaluate("img => img.naturalWidth") > 0  # the landmark's photo loads
        expect(page.locator(".place-card .no-photo")).to_have_count(2)  # the others: a placeholder
        page.screenshot(path=str(tmp_path / "maybe.png"), full_page=True)
        page.goto(live_url + "/landmarks")  # the map page: Leaflet and the SVG fallback under the CSP
        expect(page.locator(".vn-map").first).to_be_visible()
        browser.close()
    violations = [text for text in console if "Content Security Policy" in text or "Refused to" in text]
    assert not violations, violations


def _maybe_result(stack, shown_id: str) -> str:
    """A "maybe" result of the photo just shown, with places that look like it (one with a photo): its id."""
    import io

    from werkzeug.datastructures import FileStorage

    from testsupport.factories import finished_recognition, jpeg_bytes
    from webapp.extensions import db
    from webapp.models import Landmark, Recognition
    from webapp.references import add_reference_photos

    with stack.app.app_context():
        hoi_an = db.session.scalars(db.select(Landmark).filter_by(slug="pho-co-hoi-an")).one()
        add_reference_photos(hoi_an, [FileStorage(io.BytesIO(jpeg_bytes()), filename="hoi-an.jpg")], None)
        top5 = [["Vinh_Ha_Long", 0.41], ["Trang_An", 0.33], ["Cau_Vang", 0.1]]
        rec_id = finished_recognition("Vinh_Ha_Long", top5, tier="maybe", suggestions=["Vinh_Ha_Long", "Trang_An"],
                                      places=[["pho-co-hoi-an", 0.71], ["Cau_Vang", 0.66], ["Ho_Hoan_Kiem", 0.6]])
        db.session.get(Recognition, rec_id).stored_name = db.session.get(Recognition, shown_id).stored_name
        db.session.commit()
        return rec_id


def _english_name(stack, class_key: str) -> str:
    from webapp.extensions import db
    from webapp.models import Landmark

    with stack.app.app_context():
        return db.session.scalars(db.select(Landmark).filter_by(class_key=class_key)).one().name_en


SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "landmarks-vn30").is_dir(), reason="../shared/data is not present")
def test_a_held_out_photo_of_the_one_pillar_pagoda_says_chua_mot_cot_with_map_and_description(embedded_stack,
                                                                                                live_url):
    from playwright.sync_api import expect, sync_playwright

    from ml.bundle import read
    from ml.data import scan, split, subset

    info = read()  # the shipped bundle: one of its test photos, never seen in training
    dataset = scan([SHARED_DATA / "landmarks-vn20", SHARED_DATA / "landmarks-vn30"], check_images=False)
    test = split(subset(dataset, info.labels), seed=info.extra["split"]["seed"]).test
    photo = next(s.path for s in test if info.labels[s.label] == "Chua_Mot_Cot")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="vi-VN")
        page.route(lambda url: not url.startswith(live_url), lambda route: route.abort())
        page.goto(live_url + "/")
        page.set_input_files("#image", photo)
        page.click("button[type=submit]")
        page.wait_for_url("**/r/*")
        name = page.locator("h1.landmark-name")
        expect(name).to_have_text("Chùa Một Cột", timeout=240_000)  # a sure answer, in the big title
        expect(page.locator(".description")).to_contain_text("cột đá giữa hồ sen")
        expect(page.locator(".vn-map").first).to_be_visible()
        browser.close()


def test_a_saved_delete_link_deletes_from_another_browser_and_its_token_is_never_requested(embedded_stack, live_url,
                                                                                           tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from testsupport.factories import jpeg_bytes

    photo = tmp_path / "mine.jpg"
    photo.write_bytes(jpeg_bytes())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        uploader = browser.new_context(locale="en-US").new_page()
        uploader.goto(live_url + "/")
        uploader.set_input_files("#image", str(photo))
        uploader.click("button[type=submit]")
        uploader.wait_for_url("**/r/*")
        link = uploader.locator("#delete-link").get_attribute("href")
        assert "#token=" in link and "?" not in link
        other = browser.new_context(locale="en-US").new_page()  # no cookies: another browser, the saved link
        requested = []
        other.on("request", lambda request: requested.append(request.url))
        other.goto(live_url + link)
        other.get_by_role("button", name="Delete").click()
        expect(other.get_by_role("status").filter(has_text="have been deleted")).to_be_visible()
        browser.close()
    assert requested and not [url for url in requested if "token" in url], requested  # no URL carried the token
