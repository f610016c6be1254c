"""Security headers, session cookies, escaped output and rate limits."""
import io

from testsupport.factories import build_app, finished_recognition, jpeg_bytes, make_config


def test_every_response_has_the_security_headers(client):
    for path in ("/", "/landmarks", "/api/v1/landmarks", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "img-src 'self' data: https://tile.openstreetmap.org" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_scripts(client, catalog):
    import re

    for path in ("/", "/landmarks", "/landmarks/vinh-ha-long"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert " onclick=" not in html and " onload=" not in html and " style=" not in html


def test_session_cookie_is_secure_httponly_and_lax(client):
    cookie = client.get("/lang/vi?next=/").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_can_be_plain_for_http_development(tmp_path):
    client = build_app(make_config(tmp_path, SESSION_COOKIE_SECURE=False)).test_client()
    assert "Secure" not in client.get("/lang/vi?next=/").headers["Set-Cookie"]


def test_output_is_escaped(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition(None, [], status="failed", error='<script>alert("x")</script>')
    html = client.get(f"/r/{rec_id}").get_data(as_text=True)
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;" in html


def test_uploads_are_rate_limited_per_client_with_a_clear_429(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, UPLOAD_PHOTO_LIMIT="3/minute",
                                API_RATE_LIMIT="5/minute"))
    client = app.test_client()

    def upload(path):
        return client.post(path, data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})

    assert [upload("/api/v1/recognitions").status_code for _ in range(2)] == [202, 202]
    assert upload("/").status_code == 303  # the page and the API share the budget
    limited = upload("/api/v1/recognitions")
    assert limited.status_code == 429
    assert "Too many uploads" in limited.get_json()["error"]
    assert int(limited.headers["Retry-After"]) > 0
    page = upload("/")
    assert page.status_code == 429 and "Too many uploads" in page.get_data(as_text=True)
    # reads have their own budget; health checks and pages are not limited
    assert [client.get("/api/v1/landmarks").status_code for _ in range(6)] == [200] * 5 + [429]
    assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200
    other = app.test_client()  # another address has its own budget
    resp = other.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert resp.status_code == 202


def album_files(count: int) -> list:
    return [(io.BytesIO(jpeg_bytes(color=(10 * i, 90, 160))), f"{i}.jpg") for i in range(count)]


def test_the_upload_limit_counts_photos_single_ones_and_albums_together(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, UPLOAD_PHOTO_LIMIT="5/minute"))
    client = app.test_client()
    album = client.post("/api/v1/albums", data={"images": album_files(4)})
    assert album.status_code == 202 and len(album.get_json()["recognitions"]) == 4
    assert album.headers["X-RateLimit-Remaining"] == "1"
    single = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert single.status_code == 202  # the 5th photo
    sixth = client.post("/", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")},
                        headers={"Accept": "application/json"})
    assert sixth.status_code == 429 and "Too many uploads" in sixth.get_json()["error"]
    assert int(sixth.headers["Retry-After"]) > 0
    token = album.get_json()["delete_token"]
    more = client.post(f"/api/v1/albums/{album.get_json()['id']}/images", data={"images": album_files(1)},
                       headers={"X-Delete-Token": token})
    assert more.status_code == 429  # adding to an album spends the same budget
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Recognition

        assert db.session.scalar(db.select(db.func.count()).select_from(Recognition)) == 5


def test_an_album_that_only_partly_fits_the_budget_takes_what_fits(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, UPLOAD_PHOTO_LIMIT="5 per 10 minutes;50/day"))
    client = app.test_client()
    assert len(client.post("/api/v1/albums", data={"images": album_files(3)}).get_json()["recognitions"]) == 3
    partly = client.post("/api/v1/albums", data={"images": album_files(4)})
    assert partly.status_code == 202
    body = partly.get_json()
    assert len(body["recognitions"]) == 2
    assert [(e["file"], e["status"]) for e in body["errors"]] == [("2.jpg", 429), ("3.jpg", 429)]
    assert "Too many photos" in body["errors"][0]["error"]
    assert partly.headers["X-RateLimit-Remaining"] == "0"
    full = client.post("/api/v1/albums", data={"images": album_files(2)})
    assert full.status_code == 429 and "Too many uploads" in full.get_json()["error"]
    # the page's form without JavaScript, from another address: its own budget of 5
    page = client.post("/", data={"images": album_files(7)}, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert page.status_code == 303 and page.headers["Location"].startswith("/a/")
    html = client.get(page.headers["Location"], environ_base={"REMOTE_ADDR": "10.0.0.7"}).get_data(as_text=True)
    assert html.count('class="album-photo"') == 5 and html.count("Too many photos") == 2


def test_one_album_of_the_default_size_fits_the_default_budget(tmp_path):
    from config import Config

    config = Config()
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, ALBUM_MAX_PHOTOS=config.ALBUM_MAX_PHOTOS,
                                UPLOAD_PHOTO_LIMIT=config.UPLOAD_PHOTO_LIMIT))
    client = app.test_client()
    tiny = jpeg_bytes(size=(32, 24))
    resp = client.post("/api/v1/albums", data={"images": [(io.BytesIO(tiny), f"{i}.jpg") for i in range(100)]})
    assert resp.status_code == 202 and len(resp.get_json()["recognitions"]) == 100 and resp.get_json()["errors"] == []
    assert client.post("/api/v1/recognitions", data={"image": (io.BytesIO(tiny), "p.jpg")}).status_code == 429


def forwarded_upload(client, forwarded_for: str):
    return client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")},
                       headers={"X-Forwarded-For": forwarded_for}, environ_base={"REMOTE_ADDR": "10.1.1.1"})


def test_without_trusted_proxies_x_forwarded_for_is_ignored(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, UPLOAD_PHOTO_LIMIT="2/minute"))
    client = app.test_client()
    assert [forwarded_upload(client, f"203.0.113.{i}").status_code for i in range(3)] == [202, 202, 429]


def test_behind_one_trusted_proxy_each_forwarded_client_has_its_own_budget(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, UPLOAD_PHOTO_LIMIT="2/minute", TRUSTED_PROXIES=1))
    client = app.test_client()
    assert [forwarded_upload(client, "203.0.113.1").status_code for _ in range(3)] == [202, 202, 429]
    assert [forwarded_upload(client, "203.0.113.2").status_code for _ in range(2)] == [202, 202]
    # only the last hop counts: a client cannot pick its address by sending its own X-Forwarded-For
    assert forwarded_upload(client, "198.51.100.9, 203.0.113.1").status_code == 429
    proxy_fix = app.wsgi_app  # the scheme and host the proxy saw, too (redirects, Secure cookies)
    assert (proxy_fix.x_for, proxy_fix.x_proto, proxy_fix.x_host) == (1, 1, 1)
