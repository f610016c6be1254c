"""Who may do what: editor/admin sessions for pages (Flask-Login), bearer tokens for the JSON API.

Pages: ``@role_required("editor")`` sends anonymous visitors to the login page (302) and
answers 403 to a signed-in user without the role. API: ``@api_role_required("editor")``
accepts only ``Authorization: Bearer <token>`` (never the session cookie: the API is CSRF-exempt)
and answers 401 (no or bad token) or 403 (role missing) as JSON.
Passwords are hashed with scrypt (werkzeug); tokens are random and stored as SHA-256 only.
"""
from __future__ import annotations

import hmac
import secrets
from functools import wraps

from flask import g, redirect, request, url_for
from flask_login import LoginManager, current_user
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.errors import error_response
from webapp.extensions import db
from webapp.models import ROLES, ApiToken, User, token_digest, utcnow

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
PASSWORD_METHOD = "scrypt"  # memory-hard KDF; werkzeug's default parameters (n=2**15, r=8, p=1)
MIN_PASSWORD_LENGTH = 10
# checked against a real hash when the email is unknown, so a login takes as long either way
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=PASSWORD_METHOD)


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The active user of a session id ``"<id>:<session_version>"`` (``User.get_id``) whose version is current."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()) or len(session_id) > 40:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def end_sessions(user: User) -> None:
    """Every saved session of ``user`` stops working (sign-out, password change, disabling)."""
    db.session.execute(db.update(User).where(User.id == user.id)
                       .values(session_version=User.session_version + 1))
    db.session.commit()


def set_password(user: User, password: str) -> None:
    """Raises ValueError for a too short password; ends the user's saved sessions."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    end_sessions(user)


def set_active(user: User, active: bool) -> None:
    """Disable (or enable) a user: a disabled user's sessions, tokens and sign-ins stop working."""
    user.active = active
    end_sessions(user)


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same work done either way)."""
    user = db.session.scalars(db.select(User).filter_by(email=normalise_email(email))).first()
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    return user if ok and user is not None and user.active else None


def create_user(email: str, password: str, role: str) -> User:
    """Validated here so the CLI and any future page share the rules; raises ValueError."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise ValueError("give a valid email address")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if db.session.scalars(db.select(User).filter_by(email=email)).first():
        raise ValueError(f"a user {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def issue_token(user: User, name: str = "") -> str:
    """A new bearer token for ``user``; the caller shows it once, only its hash is kept."""
    token = "lmk_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=token_digest(token), name=name))
    db.session.commit()
    return token


def token_user(header: str | None) -> User | None:
    """The active user owning the unrevoked token in an ``Authorization: Bearer`` header."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = token_digest(token.strip())
    row = db.session.scalars(db.select(ApiToken).filter_by(token_hash=digest)).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    if not row.user.active:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user


def role_required(role: str):
    """For pages: anonymous → 302 to the login page; signed in without ``role`` → 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not current_user.has_role(role):
                return error_response(403, "You do not have permission to do this.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def api_role_required(role: str):
    """For the JSON API: no or bad bearer token → 401; a token whose user lacks ``role`` → 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = token_user(request.headers.get("Authorization"))
            if user is None:
                response = error_response(401, "a valid 'Authorization: Bearer <token>' header is required")
                response[0].headers["WWW-Authenticate"] = 'Bearer realm="api"'
                return response
            if not user.has_role(role):
                return error_response(403, f"this needs the {role} role")
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped

    return decorator
