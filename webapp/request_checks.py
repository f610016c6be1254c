"""What a request may contain, checked before any view or database sees it: no NUL bytes (PostgreSQL
cannot store them and answers with an error), no integer ids beyond the database's range, no JSON nested
so deeply that parsing it overflows the stack. Each is a clear 400 or 404, never a 500. And where it may
come from: ``from_another_site`` for the API's token-less uploads."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Request, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # PostgreSQL's integer


def nul_refused() -> BadRequest:
    return BadRequest("The request contains a NUL character, which is not allowed.")


class NulFreeMultiDict(ImmutableMultiDict):
    """Query strings and form fields: refused (400) on first use when a name or value holds a NUL byte."""

    def __init__(self, mapping=None):
        super().__init__(mapping)
        for key, value in self.items(multi=True):
            if (isinstance(key, str) and "\x00" in key) or (isinstance(value, str) and "\x00" in value):
                raise nul_refused()


class CheckedRequest(Request):
    parameter_storage_class = NulFreeMultiDict

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        if self.is_json or force:
            data = self.get_data(cache=True)
            if b"\x00" in data or b"\\u0000" in data.lower():
                raise nul_refused()
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise BadRequest("The JSON is nested too deeply.") from None


class DatabaseIntegerConverter(IntegerConverter):
    """``<int:…>`` up to the database's integer range: a larger id matches no route (404)."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def from_another_site() -> bool:
    """Whether a browser sent this request from a page of another site (or an opaque origin).

    Multipart posts need no CORS preflight, so without this any web page could make its visitors'
    browsers upload to the API. Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``);
    scripts and curl send neither and are not affected. Hosts are compared without scheme and port,
    which a TLS proxy in front may change."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return (urlsplit(origin).hostname or "") != (urlsplit(f"//{request.host}").hostname or "").lower()


def init_app(app: Flask) -> None:
    """Before any route is added (the converter) and before other hooks."""
    app.request_class = CheckedRequest
    app.url_map.converters["int"] = DatabaseIntegerConverter

    @app.before_request
    def refuse_nul_in_path() -> None:
        if "\x00" in request.path:
            raise nul_refused()
