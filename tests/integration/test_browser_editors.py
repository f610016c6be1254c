"""Real headless Chromium on the editors' pages, against the live stack (a real worker, the shipped model):
a visitor's correction reviewed and accepted, a landmark created with its reference photos, the model
versions page for an admin and an editor. Every page visited must log no console error and no CSP violation."""
from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, live_url  # noqa: F401  (live_url is a fixture)

from testsupport.auth_helpers import PASSWORD, make_user
from testsupport.factories import sample_photos, tower_photo

RESULT_TIMEOUT_MS = 240_000  # the first recognition waits for the worker to load the model
TILES = "https://tile.openstreetmap.org/"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class BrowserSession:
    """One browser context (its own cookies) whose pages report console errors and CSP violations."""

    def __init__(self, browser, base: str):
        self.base = base
        self.problems: list[str] = []
        self.expected_errors: set[tuple[str, str]] = set()  # (url, console text): see expect_error_status
        self.context = browser.new_context(locale="en-US")
        # Nothing leaves this machine: map tiles get a blank PNG (still checked against the CSP), anything
        # else off the live server is refused, which shows up as a console error.
        self.context.route(re.compile(r"^(?!" + re.escape(base) + ")"), self._outside)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.problems.append(f"pageerror: {err}"))

    def _outside(self, route) -> None:
        if route.request.url.startswith(TILES):
            route.fulfill(status=200, content_type="image/png", body=blank_png())
        else:
            self.problems.append(f"request off the live server: {route.request.url}")
            route.abort()

    def _console(self, msg) -> None:
        if (msg.location.get("url"), msg.text) in self.expected_errors:
            return
        if msg.type == "error" or "Content Security Policy" in msg.text or "Refused to" in msg.text:
            self.problems.append(f"{msg.type}: {msg.text} ({msg.location.get('url')})")

    def goto(self, path: str):
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        return self.page

    def expect_error_status(self, path: str, status: int, reason: str) -> None:
        """A page answered on purpose with an error status, which Chromium logs as a console error."""
        text = f"Failed to load resource: the server responded with a status of {status} ({reason})"
        self.expected_errors.add((self.base + path, text))

    def sign_in(self, email: str) -> None:
        page = self.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/editor/landmarks")

    def close(self) -> None:
        self.context.close()
        assert not self.problems, self.problems


@functools.cache
def blank_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (220, 236, 247)).save(buf, "PNG")
    return buf.getvalue()


def expect_images_loaded(locator) -> None:
    """Every <img> in ``locator`` was fetched and decoded (a broken image has naturalWidth 0)."""
    from playwright.sync_api import expect

    for i in range(locator.count()):
        img = locator.nth(i)
        img.scroll_into_view_if_needed()  # the photo grid's images load lazily
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("el => el.naturalWidth") > 0, img.get_attribute("src")


def db_query(stack, fn):
    with stack.app.app_context():
        return fn()


def test_a_visitors_correction_is_accepted_by_an_editor(browser, embedded_stack, live_url, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    from webapp.extensions import db
    from webapp.models import ReferencePhoto

    photo = sample_photos(per_class=1, classes=2)[-1][0]
    if not isinstance(photo, Path):
        (tmp_path / "photo.jpg").write_bytes(photo)
        photo = tmp_path / "photo.jpg"

    visitor = BrowserSession(browser, live_url)
    page = visitor.goto("/")
    page.set_input_files("#image", str(photo))
    page.click("button[type=submit]")
    page.wait_for_url("**/r/*")
    rec_id = page.url.rsplit("/r/", 1)[1].split("#")[0]
    expect(page.get_by_role("heading", name="Is this right?")).to_be_visible(timeout=RESULT_TIMEOUT_MS)

    choice = page.locator("#feedback-landmark")
    expect(choice).to_be_hidden()  # inside the closed <details>
    page.locator("#feedback-no").click()
    expect(choice).to_be_visible()
    other = choice.locator("option:not([disabled]):not([value=none])").first
    slug, name = other.get_attribute("value"), other.inner_text().strip()
    choice.select_option(slug)
    page.get_by_role("button", name="Send correction").click()
    expect(page.get_by_role("status").filter(has_text="Thank you!")).to_be_visible()
    expect(page.locator(".feedback-given")).to_contain_text(f"You told us this photo shows {name}")
    visitor.close()

    editor = BrowserSession(browser, live_url)
    editor.sign_in(make_user(embedded_stack.app, "editor", "browser-reviewer@example.org"))
    page = editor.goto("/editor/corrections")
    entry = page.locator(f"#correction-{rec_id}")
    expect(entry).to_contain_text(name)
    expect_images_loaded(entry.locator("img"))
    entry.get_by_role("button", name=f"Accept: add the photo to {name}").click()
    expect(page.get_by_role("status")).to_have_text(f"Accepted: the photo is now a reference photo of {name}.")
    expect(page.locator(f"#correction-{rec_id}")).to_have_count(0)

    photo_id = db_query(embedded_stack, lambda: db.session.scalars(
        db.select(ReferencePhoto.id).filter_by(recognition_id=rec_id, source="correction")).one())
    page = editor.goto(f"/editor/landmarks/{slug}/photos")
    added = page.locator(".photo-grid li").filter(has=page.get_by_alt_text(f"Reference photo {photo_id}", exact=True))
    expect(added).to_contain_text("from a visitor's correction")
    expect_images_loaded(added.locator("img"))
    editor.close()


def test_an_editor_adds_a_landmark_and_its_reference_photos(browser, embedded_stack, live_url, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    files = []
    for view in (1, 2):
        files.append(tmp_path / f"tower-{view}.jpg")
        files[-1].write_bytes(tower_photo(11, view))

    editor = BrowserSession(browser, live_url)
    editor.sign_in(make_user(embedded_stack.app, "editor", "browser-editor@example.org"))
    page = editor.goto("/editor/landmarks")
    page.get_by_role("link", name="New landmark").click()
    page.wait_for_url("**/editor/landmarks/new")
    for label, value in (("Slug (in the address)", "thap-trinh-duyet"), ("Name in Vietnamese", "Tháp trình duyệt"),
                         ("Name in English", "Browser Tower"), ("Province", "Huế"),
                         ("Latitude", "95"), ("Longitude", "107.59")):
        page.get_by_label(label).fill(value)
    editor.expect_error_status("/editor/landmarks/new", 422, "UNPROCESSABLE ENTITY")
    page.get_by_role("button", name="Add landmark").click()

    expect(page.get_by_role("alert")).to_have_text("Please correct the fields marked below.")
    expect(page.locator("#lat-error")).to_be_visible()
    expect(page.locator("#lat-error")).to_have_text("Must be between -90 and 90.")
    expect(page.get_by_label("Latitude")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name in English")).to_have_value("Browser Tower")  # the rest is kept
    page.get_by_label("Latitude").fill("16.46")
    page.get_by_role("button", name="Add landmark").click()
    page.wait_for_url("**/editor/landmarks?q=thap-trinh-duyet")
    expect(page.get_by_role("status")).to_have_text("Browser Tower was added.")

    page.get_by_role("row", name=re.compile("Browser Tower")).get_by_role("link", name="Photos").click()
    page.wait_for_url("**/editor/landmarks/thap-trinh-duyet/photos")
    expect(page.get_by_text("No reference photos yet.")).to_be_visible()
    page.get_by_label("Add photos").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_have_text("2 photos added; their embeddings are being computed.")
    thumbs = page.locator(".photo-grid img")
    expect(thumbs).to_have_count(2)
    expect_images_loaded(thumbs)

    page = editor.goto("/landmarks/thap-trinh-duyet")
    expect(page.get_by_role("heading", level=1)).to_have_text("Browser Tower")
    expect(page.locator(".landmark .facts")).to_contain_text("16.4600, 107.5900")
    expect(page.locator(".vn-map__leaflet")).to_be_visible()  # map.js reveals Leaflet once a tile has loaded
    expect(page.locator(".leaflet-marker-icon")).to_have_count(1)
    editor.close()


@pytest.fixture
def ready_version(embedded_stack):
    """A trained but inactive version, so that there is something an admin could activate."""
    from webapp.extensions import db
    from webapp.models import ModelVersion, utcnow

    def add():
        version = ModelVersion(version="browser-ready-1", arch="lenet5", status="ready", classes=["A", "B"],
                               metrics={"top1": 0.5}, finished_at=utcnow())
        db.session.add(version)
        db.session.commit()
        return version.id

    def remove():
        db.session.execute(db.delete(ModelVersion).filter_by(id=version_id))
        db.session.commit()

    version_id = db_query(embedded_stack, add)
    yield version_id
    db_query(embedded_stack, remove)


def test_models_page_for_an_admin_and_an_editor(browser, embedded_stack, live_url, ready_version):  # noqa: F811
    from playwright.sync_api import expect

    from webapp import model_versions as mv

    top1 = db_query(embedded_stack, lambda: mv.builtin_json(is_active=True)["metrics"]["top1"])
    assert isinstance(top1, float), "the shipped bundle has no top-1 in its metrics.json"

    admin = BrowserSession(browser, live_url)
    admin.sign_in(make_user(embedded_stack.app, "admin", "browser-admin@example.org"))
    page = admin.goto("/editor/models")
    shipped = page.locator("#version-shipped")
    expect(shipped).to_have_class(re.compile(r"\bactive\b"))
    expect(shipped.locator(".active-marker")).to_have_text("active")
    expect(shipped).to_contain_text(f"{top1 * 100:.1f}%")
    expect(page.get_by_role("button", name="Retrain")).to_be_enabled()
    expect(page.locator(f"#version-{ready_version}").get_by_role("button", name="Activate")).to_be_visible()
    admin.close()

    editor = BrowserSession(browser, live_url)
    editor.sign_in(make_user(embedded_stack.app, "editor", "browser-models-editor@example.org"))
    page = editor.goto("/editor/models")
    expect(page.locator(f"#version-{ready_version}")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Activate|Roll back|Use the shipped model"))).to_have_count(0)
    expect(page.get_by_text("Only an admin can activate a version or roll back.")).to_be_visible()
    editor.close()
