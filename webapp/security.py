"""Security headers on every response and rate limits per client on uploads and the API.

The Content-Security-Policy allows no inline scripts or styles: every script is a static file
and page data travels in ``data-*`` attributes or ``<script type="application/json">`` blocks.
Map tiles are the only outside resource.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https://tile.openstreetmap.org",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for old browsers
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
UPLOAD_ENDPOINTS = ("pages.upload", "api.create_recognition",  # one budget of photos, single ones and albums'
                    "pages.create_album", "pages.add_album_photos", "api.create_album", "api.add_album_images")
PHOTO_SCOPE = "photos"
API_READ_ENDPOINTS = ("api.get_recognition", "api.list_landmarks", "api.get_album")
FEEDBACK_ENDPOINTS = ("pages.feedback", "api.recognition_feedback")  # "Is this right?": one budget, page and API
LOGIN_ENDPOINTS = ("auth.login",)  # only its POSTs (sign-in attempts) count
RATE_LIMITED_ENDPOINTS = UPLOAD_ENDPOINTS + API_READ_ENDPOINTS + FEEDBACK_ENDPOINTS + LOGIN_ENDPOINTS  # may answer 429


def too_many_uploads() -> str:
    return _("Too many uploads from your address; please wait a few minutes and try again.")


def too_many_logins() -> str:
    return _("Too many sign-in attempts from your address; please wait a few minutes and try again.")


def too_many_account_logins() -> str:
    return _("Too many failed sign-in attempts for this email address; please wait a few minutes and try again.")


def too_many_requests() -> str:
    return _("Too many requests; please slow down and try again shortly.")


def init_app(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    limiter = init_rate_limits(app)
    limit_sign_ins_per_account(app, limiter)
    limit_catalog_searches(app, limiter)


def init_rate_limits(app: Flask) -> Limiter:
    """One limiter per app (settings differ between test apps), wrapped around the views it limits.

    Uploads through the page and the API, single photos and albums, share one budget of photos per
    client (``UPLOAD_PHOTO_LIMIT``; ``photo_cost``: a request costs the photos it sends); API reads,
    including the result page's polling, have ``API_RATE_LIMIT``; sign-in attempts (POST /login) have
    ``LOGIN_RATE_LIMIT``, against password guessing; visitors' feedback posts (page and API together)
    share one ``API_RATE_LIMIT`` budget. Counters live in
    ``RATELIMIT_STORAGE_URI``: memory by default (per web process), Redis in production.
    """
    limiter = Limiter(get_remote_address, app=app)
    app.extensions["limiter"] = limiter
    # Any: Flask-Limiter types its decorators apart from Flask's view functions
    uploads: Any = limiter.shared_limit(lambda: app.config["UPLOAD_PHOTO_LIMIT"], scope=PHOTO_SCOPE, cost=photo_cost,
                                        error_message=too_many_uploads)
    reads: Any = limiter.limit(lambda: app.config["API_RATE_LIMIT"], error_message=too_many_requests)
    for endpoint in UPLOAD_ENDPOINTS:
        app.view_functions[endpoint] = uploads(app.view_functions[endpoint])
    for endpoint in API_READ_ENDPOINTS:
        app.view_functions[endpoint] = reads(app.view_functions[endpoint])
    feedback: Any = limiter.shared_limit(lambda: app.config["API_RATE_LIMIT"], scope="feedback",
                                         error_message=too_many_requests)
    for endpoint in FEEDBACK_ENDPOINTS:
        app.view_functions[endpoint] = feedback(app.view_functions[endpoint])
    logins: Any = limiter.limit(lambda: app.config["LOGIN_RATE_LIMIT"], methods=["POST"], error_message=too_many_logins)
    for endpoint in LOGIN_ENDPOINTS:
        app.view_functions[endpoint] = logins(app.view_functions[endpoint])

    from webapp.errors import error_response

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(err: RateLimitExceeded):
        return error_response(429, err.description)

    return limiter


def limit_sign_ins_per_account(app: Flask, limiter: Limiter) -> None:
    """Failed sign-ins per email address (``LOGIN_ACCOUNT_RATE_LIMIT``), from whatever addresses: many
    addresses cannot guess one account's password, and one address (a proxy) cannot lock everyone out.
    Only failures (401) count; unknown emails count the same, so the answer reveals no account."""
    from webapp.auth import normalise_email

    def account() -> str:
        return "account:" + normalise_email(request.form.get("email", ""))[:254]

    failures: Any = limiter.limit(lambda: app.config["LOGIN_ACCOUNT_RATE_LIMIT"], key_func=account, methods=["POST"],
                                  deduct_when=lambda response: response.status_code == 401,
                                  error_message=too_many_account_logins)
    for endpoint in LOGIN_ENDPOINTS:
        app.view_functions[endpoint] = failures(app.view_functions[endpoint])


def limit_catalog_searches(app: Flask, limiter: Limiter) -> None:
    """Catalog searches (``/landmarks?q=…``) per client (``SEARCH_RATE_LIMIT``); browsing it is not limited."""
    searches: Any = limiter.limit(lambda: app.config["SEARCH_RATE_LIMIT"],
                                  exempt_when=lambda: not request.args.get("q"), error_message=too_many_requests)
    app.view_functions["catalog.index"] = searches(app.view_functions["catalog.index"])


def photo_cost() -> int:
    """An upload request's cost: its photos (a single upload: one; an album post: the files it sends, up to
    ``ALBUM_MAX_PHOTOS``). An album post that only partly fits the client's budget costs what fits:
    ``g.photo_budget`` tells the view how many files to try, the rest are refused one by one (webapp/albums.py).
    When none fits it costs them all, so Flask-Limiter refuses the request with 429."""
    if "photo_cost" not in g:
        from webapp.albums import MULTI_PHOTO_ENDPOINTS, photos_sent

        sent = 1
        if request.endpoint in MULTI_PHOTO_ENDPOINTS:
            sent = max(1, min(len(photos_sent()), current_app.config["ALBUM_MAX_PHOTOS"]))
        g.photo_budget = min(sent, photos_left())
        g.photo_cost = g.photo_budget or sent
    return g.photo_cost


def photos_left() -> int:
    """Photos this client may still upload now: the least left over the ``UPLOAD_PHOTO_LIMIT`` windows (the
    counters Flask-Limiter keeps for this shared limit: prefix, client address, scope)."""
    limiter = current_app.extensions["limiter"]
    args = [get_remote_address(), PHOTO_SCOPE]
    if current_app.config.get("RATELIMIT_KEY_PREFIX"):
        args.insert(0, current_app.config["RATELIMIT_KEY_PREFIX"])
    return min(limiter.limiter.get_window_stats(item, *args).remaining
               for item in parse_many(current_app.config["UPLOAD_PHOTO_LIMIT"]))


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None: no scheme, no host, no ``//`` or ``/\\`` tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):  # browsers read /\ as //
        return None
    return target
