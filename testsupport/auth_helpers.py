"""Editors and admins for tests: create users, sign in through the real login form, get API tokens."""
from __future__ import annotations

PASSWORD = "correct horse battery staple"


def make_user(app, role: str = "editor", email: str | None = None, password: str = PASSWORD) -> str:
    """Create a user with ``role``; returns the email."""
    from webapp.auth import create_user

    email = email or f"{role}@example.org"
    with app.app_context():
        create_user(email, password, role)
    return email


def login(client, email: str, password: str = PASSWORD):
    """Sign in through POST /login (the real form, CSRF off in tests); returns the response."""
    return client.post("/login", data={"email": email, "password": password})


def api_headers(app, email: str) -> dict:
    """An ``Authorization: Bearer`` header for the user with ``email``."""
    from webapp.auth import issue_token
    from webapp.extensions import db
    from webapp.models import User

    with app.app_context():
        user = db.session.scalars(db.select(User).filter_by(email=email)).one()
        return {"Authorization": f"Bearer {issue_token(user, 'test')}"}


def signed_in_client(app, role: str):
    """A test client signed in as a new user with ``role`` (email ``<role>@example.org``)."""
    client = app.test_client()
    response = login(client, make_user(app, role))
    assert response.status_code in (302, 303), response.status_code
    return client
