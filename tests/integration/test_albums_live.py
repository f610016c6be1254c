"""Trip albums on the real stack: the API with a real worker process, and a real Chromium on the pages.

The browser test runs its own stack and starts its worker only once the album page is open, so the page is
seen filling in live. Generated photos are no landmark the model knows: the trip map's pins come from sure
answers written into the finished rows afterwards (the worker's EXIF time is the other half of issue #13)."""
import io
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS
from werkzeug.serving import make_server

from testsupport.factories import jpeg_bytes, sample_photos, tower_photo, truncated_jpeg
from testsupport.live_stack import Stack


def photo_bytes(count: int) -> list[bytes]:
    found = [p.read_bytes() if isinstance(p, Path) else p for p, _ in sample_photos(per_class=1, classes=count)]
    return (found + [tower_photo(7, view) for view in range(count)])[:count]


def wait_album_finished(stack, url: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = stack.client.get(url).get_json()
        if body["finished"]:
            return body
        assert stack.worker.poll() is None, f"worker died:\n{stack.log.read_text()[-3000:]}"
        time.sleep(0.2)
    pytest.fail(f"album {url} not finished after {timeout}s:\n{stack.log.read_text()[-3000:]}")


def test_album_api_end_to_end_with_a_real_worker(embedded_stack):
    from webapp.extensions import db
    from webapp.models import Recognition

    stack = embedded_stack
    files = [(io.BytesIO(data), f"photo-{i}.jpg") for i, data in enumerate(photo_bytes(5))]
    files.insert(2, (io.BytesIO(truncated_jpeg()), "broken.jpg"))
    resp = stack.client.post("/api/v1/albums", data={"images": files})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    created = resp.get_json()
    assert [e["file"] for e in created["errors"]] == ["broken.jpg"] and created["errors"][0]["status"] == 415
    assert len(created["recognitions"]) == 5
    more = stack.client.post(f"/api/v1/albums/{created['id']}/images",
                             data={"images": [(io.BytesIO(jpeg_bytes()), "later.jpg")]},
                             headers={"X-Delete-Token": created["delete_token"]})
    assert more.status_code == 202 and len(more.get_json()["recognitions"]) == 1

    album = wait_album_finished(stack, created["status_url"])
    assert album["counts"] == {"total": 6, "queued": 0, "running": 0, "done": 6, "failed": 0, "finished": 6}
    for rec in album["recognitions"]:
        assert rec["status"] == "done" and rec["tier"] in ("sure", "maybe", "unknown") and rec["model_version"]
        assert len(rec["alternatives"]) == 5
    ids = [rec["id"] for rec in album["recognitions"]]
    assert ids == [r["id"] for r in created["recognitions"] + more.get_json()["recognitions"]]
    with stack.app.app_context():
        names = [db.session.get(Recognition, rec_id).stored_name for rec_id in ids]
    folder = Path(stack.config["UPLOAD_DIR"])
    files_of_album = {f"{name}{ext}" for name in names for ext in (".orig", ".jpg")}
    assert files_of_album <= {p.name for p in folder.iterdir()}

    gone = stack.client.delete(created["status_url"], headers={"X-Delete-Token": created["delete_token"]})
    assert gone.status_code == 204
    assert not files_of_album & {p.name for p in folder.iterdir()}  # every file of every photo
    assert stack.client.get(created["status_url"]).status_code == 404
    assert all(stack.client.get(f"/api/v1/recognitions/{rec_id}").status_code == 404 for rec_id in ids)


# --- a real browser -----------------------------------------------------------------------------------

@pytest.fixture
def album_stack(tmp_path):
    """Its own stack, CSRF on as in production, the worker not started yet."""
    stack = Stack(tmp_path, WTF_CSRF_ENABLED=True)
    stack.prepare()
    server = make_server("127.0.0.1", 0, stack.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.url = f"http://127.0.0.1:{server.server_port}"
    yield stack
    server.shutdown()
    stack.stop()


# logs each upload row's state and its progress bar, and the album page's progress line, as they change
WATCH = """
new MutationObserver(() => {
  for (const li of document.querySelectorAll('.upload-item')) {
    const bar = li.querySelector('progress');
    const key = li.querySelector('.file-name').textContent + ':' + li.dataset.state + ':' + bar.value;
    if (li.dataset.logged !== key) { li.dataset.logged = key; console.log('upload ' + key); }
  }
  const line = document.getElementById('album-progress-text');
  if (line && line.dataset.logged !== line.textContent) {
    line.dataset.logged = line.textContent;
    console.log('album ' + line.textContent);
  }
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def test_twelve_photos_make_an_album_that_fills_in_live_with_a_numbered_trip_map(album_stack, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from webapp.extensions import db
    from webapp.models import Album, Recognition

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    stack = album_stack
    paths = []
    for i, data in enumerate(photo_bytes(12)):
        paths.append(tmp_path / f"trip-{i:02d}.jpg")
        paths[-1].write_bytes(data)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US")
        page.route(lambda url: not url.startswith(stack.url), lambda route: route.abort())  # nothing leaves
        console = []
        page.on("console", lambda msg: console.append(msg.text))
        page.on("pageerror", lambda err: console.append(str(err)))
        page.add_init_script(WATCH)
        page.goto(stack.url + "/")
        page.set_input_files("#image", [str(p) for p in paths])  # twelve at once
        expect(page.locator("#chosen-file")).to_have_text("12 photos chosen")
        expect(page.locator(".upload-item")).to_have_count(12)
        page.click("button[type=submit]")
        page.wait_for_url("**/a/*", timeout=60_000)
        album_id = page.url.rsplit("/a/", 1)[1]
        added = {text.split(":")[0][len("upload "):] for text in console if text.startswith("upload ") and
                 text.endswith(":added:100")}
        assert added == {p.name for p in paths}, console  # each file's own bar went to 100 and said "Added"
        assert any(t.startswith("upload trip-00.jpg:sending:") for t in console)

        expect(page.locator("#album-progress-text")).to_have_text("0 of 12 recognised")
        expect(page.locator(".album-photo")).to_have_count(12)
        stack.start_worker(4, "threads")  # the page fills in as the worker finishes
        expect(page.locator("#album-progress-text")).to_have_text("12 of 12 recognised", timeout=240_000)
        assert page.locator("#album-progress").evaluate("bar => bar.value === bar.max && bar.max === 12")
        expect(page.locator(".album-photo .answer .tier")).to_have_count(12)  # every answer with its tier
        live = [t for t in console if t.startswith("album ")]
        # drawn with 0, filled by album.js (at least once), drawn again complete after its reload
        assert live[0] == "album 0 of 12 recognised" and live[-1] == "album 12 of 12 recognised", live
        assert len(live) >= 3, live
        expect(page.locator(".album-photo img").first).to_have_js_property("complete", True)
        assert page.locator(".album-photo img").first.evaluate("img => img.naturalWidth") > 0

        taken = trip_results(stack, album_id)  # sure answers at known times, in an order unlike the upload's
        page.reload()
        expect(page.locator("#trip-summary")).to_have_text("You visited 4 landmarks in 3 provinces")
        numbers = page.locator(".vn-map__pin--numbered text.vn-map__number")
        expect(numbers).to_have_count(4)
        assert numbers.all_text_contents() == ["1", "2", "3", "4"]
        stops = page.locator(".stop .stop-name")
        assert stops.all_text_contents() == taken  # numbered in the order the photos were taken
        expect(page.locator(".vn-map a[href='#stop-1']")).to_have_count(1)  # a pin leads to its photos + page
        expect(page.locator("#stop-3 .stop-photos a")).to_have_count(2)  # a landmark photographed twice
        expect(page.locator(".vn-map__svg")).to_be_visible()  # offline: the SVG map, no tiles
        page.screenshot(path=str(tmp_path / "album.png"), full_page=True)

        phone = browser.new_page(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                 has_touch=True, locale="vi-VN")
        phone.route(lambda url: not url.startswith(stack.url), lambda route: route.abort())
        phone.goto(page.url)
        expect(phone.locator("#trip-summary")).to_contain_text("Bạn đã đến 4 địa danh ở 3 tỉnh, thành")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
            phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        phone.screenshot(path=str(tmp_path / "album-phone.png"), full_page=True)
        phone.goto(stack.url + "/")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # a bad file among good ones: its own error, the others still go into a new album
        bad = tmp_path / "notes.jpg"
        bad.write_text("this is not a photo\n" * 20)
        page.goto(stack.url + "/")
        page.set_input_files("#image", [str(paths[0]), str(bad), str(paths[1])])
        page.click("button[type=submit]")
        refused = page.locator(".upload-item[data-state=refused]")
        expect(refused).to_have_count(1)
        expect(refused).to_contain_text("notes.jpg")
        expect(refused.locator(".file-state")).to_contain_text("This file cannot be used")
        expect(page.locator(".upload-item[data-state=added]")).to_have_count(2)
        expect(page.locator("#upload-error")).to_have_text("One photo could not be added (see the list).")
        page.click("#album-link")
        page.wait_for_url("**/a/*")
        expect(page.locator(".album-photo")).to_have_count(2)
        browser.close()
    with stack.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Album)) == 2
        assert db.session.scalar(db.select(db.func.count()).select_from(Recognition)) == 14
    violations = [text for text in console if "Content Security Policy" in text or "Refused to" in text]
    assert not violations, violations


def trip_results(stack, album_id: str) -> list[str]:
    """Make five of the album's photos sure answers of four landmarks, taken in an order unlike the upload
    order (two of Hà Nội, one of them twice); the English names in the order taken."""
    from webapp.extensions import db
    from webapp.models import Landmark, Recognition

    plan = [(7, "Vinh_Ha_Long", 9), (2, "Chua_Mot_Cot", 11), (10, "Cau_Vang", 14), (0, "Chua_Mot_Cot", 12),
            (5, "Ho_Hoan_Kiem", 10)]  # (upload index, landmark, hour taken)
    with stack.app.app_context():
        recs = db.session.scalars(db.select(Recognition).filter_by(album_id=album_id)
                                  .order_by(Recognition.created_at)).all()
        day = datetime(2026, 7, 2)
        for index, key, hour in plan:
            rec = recs[index]
            rec.label, rec.tier, rec.taken_at = key, "sure", day + timedelta(hours=hour)
            rec.landmark = db.session.scalars(db.select(Landmark).filter_by(class_key=key)).one()
        for rec in recs:
            if rec.taken_at is None:
                rec.tier, rec.label, rec.landmark = "unknown", None, None
        db.session.commit()
        by_key = {lm.class_key: lm.name_en for lm in db.session.scalars(db.select(Landmark))}
    return [by_key[key] for key in ("Vinh_Ha_Long", "Ho_Hoan_Kiem", "Chua_Mot_Cot", "Cau_Vang")]
