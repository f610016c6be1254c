"""Signing in and out: the form, safe redirects, throttling, CSRF, and the `flask users` commands."""
from __future__ import annotations

import re

import pytest

from testsupport.auth_helpers import PASSWORD, api_headers, login, make_user, signed_in_client
from testsupport.factories import build_app, make_config


def test_login_page_renders_a_form(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in html and 'name="password"' in html and 'type="password"' in html


def test_good_credentials_sign_in_and_record_the_time(app, client):
    from webapp.extensions import db
    from webapp.models import User

    email = make_user(app, "editor")
    response = login(client, email)
    assert response.status_code == 303
    assert response.headers["Location"] == "/editor/landmarks"
    with app.app_context():
        assert db.session.scalars(db.select(User)).one().last_login_at is not None


@pytest.mark.parametrize("email, password", [("editor@example.org", "wrong password!"),
                                             ("nobody@example.org", PASSWORD)])
def test_bad_credentials_show_the_same_inline_error(app, client, email, password):
    make_user(app, "editor")
    response = login(client, email, password)
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "Wrong email or password." in html and 'name="email"' in html
    assert client.get("/editor/landmarks").status_code == 302  # still signed out


def test_email_is_case_insensitive(app, client):
    make_user(app, "editor")
    assert login(client, "  Editor@Example.ORG ").status_code == 303


def test_an_inactive_user_cannot_sign_in(app, client):
    from webapp.extensions import db
    from webapp.models import User

    email = make_user(app, "editor")
    with app.app_context():
        db.session.scalars(db.select(User)).one().active = False
        db.session.commit()
    assert login(client, email).status_code == 401


def test_empty_fields_are_errors_not_crashes(client):
    response = client.post("/login", data={})
    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)


@pytest.mark.parametrize("target, expected", [
    ("/editor/landmarks?q=hue", "/editor/landmarks?q=hue"),
    ("/landmarks/vinh-ha-long", "/landmarks/vinh-ha-long"),
    ("//evil.example/x", "/editor/landmarks"),
    ("https://evil.example/x", "/editor/landmarks"),
    ("/\\evil.example", "/editor/landmarks"),
    ("/\t/evil.example", "/editor/landmarks"),
    ("javascript:alert(1)", "/editor/landmarks"),
    ("", "/editor/landmarks"),
])
def test_next_is_followed_only_to_our_own_pages(app, client, target, expected):
    email = make_user(app, "editor")
    response = client.post("/login", data={"email": email, "password": PASSWORD, "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_next_from_the_query_string_reaches_the_form(app, client):
    html = client.get("/login?next=/editor/landmarks/new").get_data(as_text=True)
    assert 'value="/editor/landmarks/new"' in html
    html = client.get("/login?next=//evil.example").get_data(as_text=True)
    assert re.search(r'name="next" type="hidden" value=""', html)


def test_a_protected_page_sends_to_login_and_back(app, client):
    email = make_user(app, "editor")
    response = client.get("/editor/landmarks?q=ha")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    target = re.search(r'name="next" type="hidden" value="([^"]*)"', login_page).group(1)
    assert target == "/editor/landmarks?q=ha"
    back = client.post("/login", data={"email": email, "password": PASSWORD, "next": target})
    assert back.headers["Location"] == "/editor/landmarks?q=ha"


def test_logout_ends_the_session(app, client):
    login(client, make_user(app, "editor"))
    assert client.get("/editor/landmarks").status_code == 200
    assert client.get("/logout").status_code == 405  # a link cannot sign anyone out
    response = client.post("/logout")
    assert response.status_code == 303
    assert client.get("/editor/landmarks").status_code == 302


def test_login_and_logout_need_the_csrf_token(tmp_path):
    app = build_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    email = make_user(app, "editor")
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 400
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)})
    assert response.status_code == 303
    assert client.post("/logout").status_code == 400  # without the token: still signed in
    assert client.get("/editor/landmarks").status_code == 200


def test_sign_in_attempts_are_throttled_per_client(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3/minute"))
    email = make_user(app, "editor")
    client = app.test_client()
    codes = [login(client, email, "wrong password!").status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    limited = login(client, email)  # even the right password waits now
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/login").status_code == 200  # only attempts count, not showing the form
    other = app.test_client()
    response = other.post("/login", data={"email": email, "password": PASSWORD},
                          environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 303


def test_failed_sign_ins_are_throttled_per_account_from_any_address(tmp_path):
    app = build_app(make_config(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100/minute",
                                LOGIN_ACCOUNT_RATE_LIMIT="3/15 minutes"))
    email = make_user(app, "editor")
    other_email = make_user(app, "admin")

    def attempt(address: str, who: str, password: str = "wrong password!"):
        return app.test_client().post("/login", data={"email": who, "password": password},
                                      environ_base={"REMOTE_ADDR": address})

    assert login(app.test_client(), email).status_code == 303  # a success does not count
    assert [attempt(f"10.0.0.{i}", email.upper()).status_code for i in range(3)] == [401, 401, 401]
    locked = attempt("10.0.1.1", email, PASSWORD)  # a new address, even the right password: refused a while
    message = "Too many failed sign-in attempts for this email address"
    assert locked.status_code == 429 and message in locked.get_data(as_text=True)
    assert attempt("10.0.1.2", other_email, PASSWORD).status_code == 303  # other accounts are unaffected
    # an unknown email is throttled the same way: the answer tells nobody whether an account exists
    ghost = [attempt(f"10.0.2.{i}", "ghost@example.org").status_code for i in range(4)]
    assert ghost == [401, 401, 401, 429]
    assert message in attempt("10.0.2.9", "ghost@example.org").get_data(as_text=True)


# --- flask users ------------------------------------------------------------------------------

def saved_session(client) -> str:
    return client.get_cookie("session").value


def replayed(app, cookie: str) -> int:
    """What a browser holding a saved copy of the session cookie gets on an editor page."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/editor/landmarks").status_code


def test_a_saved_session_cookie_stops_working_after_logout(app):
    client = signed_in_client(app, "editor")
    cookie = saved_session(client)
    assert replayed(app, cookie) == 200
    assert client.post("/logout").status_code == 303
    assert replayed(app, cookie) == 302  # to the login page: the old session ended everywhere
    assert login(client, "editor@example.org").status_code == 303  # signing in again works


def test_disabling_a_user_ends_their_sessions_and_tokens_and_sign_ins(app, runner, catalog):
    client = signed_in_client(app, "editor")
    cookie = saved_session(client)
    headers = api_headers(app, "editor@example.org")
    assert client.get("/api/v1/landmarks/vinh-ha-long/photos", headers=headers).status_code == 200
    result = runner.invoke(args=["users", "disable", "Editor@example.org"])
    assert result.exit_code == 0 and "editor@example.org disabled" in result.output, result.output
    assert replayed(app, cookie) == 302 and client.get("/editor/landmarks").status_code == 302
    assert app.test_client().get("/api/v1/landmarks/vinh-ha-long/photos", headers=headers).status_code == 401
    assert login(app.test_client(), "editor@example.org").status_code == 401  # same answer as a wrong password
    assert "inactive" in runner.invoke(args=["users", "list"]).output
    assert runner.invoke(args=["users", "enable", "editor@example.org"]).exit_code == 0
    assert login(app.test_client(), "editor@example.org").status_code == 303
    assert replayed(app, cookie) == 302  # an enabled user signs in anew; old cookies stay dead


def test_changing_a_password_ends_saved_sessions(app, runner):
    client = signed_in_client(app, "editor")
    cookie = saved_session(client)
    result = runner.invoke(args=["users", "password", "editor@example.org"], input="a new long password\n" * 2)
    assert result.exit_code == 0, result.output
    assert replayed(app, cookie) == 302
    assert login(app.test_client(), "editor@example.org").status_code == 401
    assert login(app.test_client(), "editor@example.org", "a new long password").status_code == 303


def test_cli_creates_users_and_refuses_bad_input(app, runner):
    result = runner.invoke(args=["users", "create", "Ed@Example.org", "--role", "editor", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert "created editor ed@example.org" in result.output
    assert login(app.test_client(), "ed@example.org").status_code == 303

    for args, message in [
        (["ed@example.org", "--role", "editor", "--password", PASSWORD], "already exists"),
        (["short@example.org", "--role", "editor", "--password", "short"], "at least 10 characters"),
        (["not-an-email", "--role", "admin", "--password", PASSWORD], "valid email"),
    ]:
        result = runner.invoke(args=["users", "create", *args])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    result = runner.invoke(args=["users", "create", "x@example.org", "--role", "visitor", "--password", PASSWORD])
    assert result.exit_code == 2  # not a role


def test_cli_prompts_for_a_hidden_password_twice(app, runner):
    result = runner.invoke(args=["users", "create", "admin@example.org", "--role", "admin"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert "Repeat for confirmation" in result.output
    assert login(app.test_client(), "admin@example.org").status_code == 303


def test_cli_token_works_on_the_api_until_revoked(app, runner, catalog):
    make_user(app, "editor", "ed@example.org")
    other_email = make_user(app, "admin", "boss@example.org")
    result = runner.invoke(args=["users", "token", "ED@example.org", "--name", "import script"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert re.fullmatch(r"lmk_[A-Za-z0-9_-]{40,}", token)  # the token and nothing else
    second = runner.invoke(args=["users", "token", "ed@example.org"]).output.strip()
    other = runner.invoke(args=["users", "token", other_email]).output.strip()
    client = app.test_client()

    def status(tok: str) -> int:
        return client.get("/api/v1/landmarks/vinh-ha-long/photos",
                          headers={"Authorization": f"Bearer {tok}"}).status_code

    assert status(token) == 200 and status(second) == 200 and status(other) == 200
    listed = runner.invoke(args=["users", "list"]).output
    assert "ed@example.org" in listed and "2 tokens" in listed and "boss@example.org" in listed

    result = runner.invoke(args=["users", "revoke", "ed@example.org"])
    assert result.exit_code == 0 and "2 tokens of ed@example.org revoked" in result.output
    assert status(token) == 401 and status(second) == 401
    assert status(other) == 200  # another user's token is untouched

    from webapp.extensions import db
    from webapp.models import ApiToken, User

    with app.app_context():
        ed = db.session.scalars(db.select(User).filter_by(email="ed@example.org")).one()
        rows = db.session.scalars(db.select(ApiToken).filter_by(user_id=ed.id)).all()
        assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)
        assert all(row.token_hash not in (token, second) for row in rows)  # only hashes are stored
        assert {row.name for row in rows} == {"import script", ""}


def test_cli_token_and_revoke_name_unknown_users(runner):
    for command in ("token", "revoke"):
        result = runner.invoke(args=["users", command, "ghost@example.org"])
        assert result.exit_code == 1 and "no user ghost@example.org" in result.output
