"""Security headers, session cookies, escaped output and rate limits."""
import io

from factories import build_app, finished_recognition, jpeg_bytes, make_config


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
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, UPLOAD_RATE_LIMIT="3/minute",
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
