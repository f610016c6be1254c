"""The long fuzz run: hostile files through the real upload path (Flask test client, SQLite, embedded broker).

    nice .venv/bin/python bench/fuzz.py --cases 10000 --api-cases 3000 --album-cases 1000 --out docs/fuzz.md

Uses the strategies of ``testsupport/hostile.py`` (random bytes, mutated / truncated images of every format,
polyglots, absurd dimensions, animations, empty files). Every answer must be 202 (then the stored copy
decodes like the worker will decode it) or a clear 400/413/415; anything else is a failure. Then the
editors' API with an editor's bearer token (``--api-cases``): hostile JSON (any JSON value, deep nesting, NUL
bytes, huge numbers, long strings) for creating and editing landmarks, hostile slugs and ids in paths, and
hostile files as reference photos; every answer must be a 2xx or a clear 4xx with a JSON error, never a 5xx.
Then the trip-album API (``--album-cases``): 0 to 6 files per post (valid and hostile, hostile names),
hostile album ids in paths, hostile ``X-Delete-Token`` values, adding to and deleting the run's own albums;
a 202 must account for every file sent, and a file name comes back only JSON-escaped in ``errors``.
Writes a table of what was sent and what came back.
"""
from __future__ import annotations

import argparse
import collections
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ml import images  # noqa: E402
from testsupport.factories import build_app, make_config  # noqa: E402
from testsupport.hostile import HOSTILE_NAMES, hostile_files  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--api-cases", type=int, default=3_000, help="cases for the editors' API")
    parser.add_argument("--album-cases", type=int, default=1_000, help="cases for the album API")
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown report here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    app = build_app(make_config(tmp, MAX_UPLOAD_MB=1))
    client = app.test_client()
    table: collections.Counter = collections.Counter()
    failures: list[str] = []
    started = time.monotonic()

    @settings(max_examples=args.cases, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(hostile_files(), st.sampled_from(HOSTILE_NAMES))
    def upload(case, name):
        kind, data = case
        family = family_of(kind)
        resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), name, "text/html")})
        status = resp.status_code
        table[(family, status)] += 1
        text = resp.get_data(as_text=True)
        problem = None
        if status not in (202, 400, 413, 415):
            problem = f"status {status}"
        elif name and name in text:
            problem = "file name echoed"
        elif status == 202:
            try:
                images.decode(data, allowed_formats=images.UPLOAD_FORMATS)
            except images.ImageError as err:
                problem = f"accepted but the worker cannot decode it: {err}"
        if problem:
            failures.append(f"{kind} ({len(data)} bytes): {problem}")

    upload()
    elapsed = time.monotonic() - started
    total = sum(table.values())
    print(f"{total} cases in {elapsed:.0f}s, {len(failures)} failures")
    api_table, api_failures, api_elapsed = fuzz_editor_api(app, args.api_cases)
    api_total = sum(api_table.values())
    print(f"editors' API: {api_total} cases in {api_elapsed:.0f}s, {len(api_failures)} failures")
    album_table, album_failures, album_elapsed = fuzz_album_api(app, args.album_cases)
    album_total = sum(album_table.values())
    print(f"album API: {album_total} requests in {album_elapsed:.0f}s, {len(album_failures)} failures")
    for line in (failures + api_failures + album_failures)[:20]:
        print("  FAIL", line)
    if args.out:
        text = report(table, failures, total, elapsed) + api_report(api_table, api_failures, api_total, api_elapsed)
        text += album_report(album_table, album_failures, album_total, album_elapsed)
        args.out.write_text(text, encoding="utf-8")
    return 1 if failures or api_failures or album_failures else 0


# --- the editors' API -------------------------------------------------------------------------------

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
                        st.sampled_from(["\x00", "x\x00y", "a" * 5000, "<script>", "ha-long", "21,0288"]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=20), inner, max_size=5), max_leaves=12)
FIELDS = ("slug", "class_key", "name_vi", "name_en", "province", "lat", "lon", "description_vi", "description_en")
LANDMARK_BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={field: JSON_VALUES for field in FIELDS}),
    JSON_VALUES,
    st.integers(1, 200_000).map(lambda depth: "[" * depth + "]" * depth),  # raw text: nesting
)
PATH_PARTS = st.one_of(st.text(max_size=40), st.sampled_from(["vinh-ha-long", "%00", "..", "a%2Fb", "9" * 30]))


def fuzz_editor_api(app, cases: int):
    """Hostile requests to the editors' API with a valid editor token: (table, failures, seconds)."""
    from urllib.parse import quote

    from testsupport.auth_helpers import api_headers, make_user
    from testsupport.factories import SAMPLE_CATALOG
    from webapp.cli import upsert_landmarks

    with app.app_context():
        upsert_landmarks(SAMPLE_CATALOG)
    headers = api_headers(app, make_user(app, "editor", "fuzz-editor@example.org"))
    client = app.test_client()
    table: collections.Counter = collections.Counter()
    failures: list[str] = []
    started = time.monotonic()

    def check(kind: str, resp) -> None:
        table[(kind, resp.status_code)] += 1
        body = resp.get_json(silent=True) if resp.status_code >= 400 else {}
        if resp.status_code >= 500 or (resp.status_code >= 400 and not (body or {}).get("error")):
            failures.append(f"{kind}: {resp.status_code} {resp.get_data(as_text=True)[:160]}")

    def send_json(method: str, url: str, body):
        if isinstance(body, str) and body.startswith("["):
            return client.open(url, method=method, data=body, content_type="application/json", headers=headers)
        return client.open(url, method=method, json=body, headers=headers)

    @settings(max_examples=cases, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.sampled_from(["create", "edit", "path", "photo"]), LANDMARK_BODIES, PATH_PARTS, hostile_files())
    def request(action, body, part, photo):
        slug = quote(part, safe="%") or "x"
        if action == "create":
            check("create landmark (JSON)", send_json("POST", "/api/v1/landmarks", body))
        elif action == "edit":
            check("edit landmark (JSON)", send_json("PATCH", "/api/v1/landmarks/vinh-ha-long", body))
        elif action == "path":
            check("slugs and ids in paths", client.get(f"/api/v1/landmarks/{slug}/photos/{slug}", headers=headers))
            check("slugs and ids in paths", client.delete(f"/api/v1/landmarks/{slug}/photos/{slug}", headers=headers))
        else:
            kind, data = photo
            resp = client.post("/api/v1/landmarks/ho-hoan-kiem/photos", headers=headers,
                               data={"photos": (io.BytesIO(data), "p.jpg")})
            check("reference photo upload", resp)

    request()
    return table, failures, time.monotonic() - started


def api_report(table, failures, total, elapsed) -> str:
    lines = [
        "",
        "## The editors' API",
        "",
        "The same app, with an editor's bearer token: hostile JSON bodies (any JSON value, deep nesting up to",
        "200,000 levels, NUL bytes, integers of 400 digits, NaN/Infinity, long strings) for creating and editing",
        "landmarks, hostile slugs and ids in paths (NUL, `..`, 30-digit ids), and the hostile files above as",
        "reference photos. A case fails on a 5xx or on a 4xx without a JSON `error`.",
        "",
    ]
    return "\n".join(lines + request_table(table, failures, total, elapsed))


# --- the album API ----------------------------------------------------------------------------------

ALBUM_FULL_AT = 12  # ALBUM_MAX_PHOTOS during the album run, so that the run's albums fill up (409)


def valid_files():
    """Seed images of the formats an upload accepts."""
    from testsupport.hostile import seed_images

    accepted = sorted(kind for kind in seed_images() if kind.split()[-1] in ("JPEG", "PNG", "WEBP"))
    return st.sampled_from(accepted).map(lambda kind: (f"seed {kind}", seed_images()[kind]))


ALBUM_FILES = st.lists(st.tuples(st.one_of(valid_files(), hostile_files()), st.sampled_from(HOSTILE_NAMES)),
                       max_size=6)
# any text but CR/LF, which no HTTP header can carry (the test client refuses them)
TOKENS = st.one_of(st.text(st.characters(exclude_characters="\r\n"), max_size=60),
                   st.sampled_from(["", " ", "\x00", "tok\x00en", "a" * 100_000, "null"]),
                   st.sampled_from(["real+NUL", "real-1", "REAL", "other album's", "deleted album's"]))
ALBUM_IDS = st.one_of(PATH_PARTS, st.sampled_from(["real+%00", "real-1", "REAL", "real/..", "deleted", "a" * 5000,
                                                   "%00" * 50, "%C0%AE%C0%AE", "%ff%fe"]))
ALBUM_ACTIONS = ["create", "create", "add", "add", "hostile token", "path", "get", "delete"]


def received_name(name: str) -> str:
    """The file name as the app receives it from the test client (which sends it unescaped, so a ``"``
    ends it) and Werkzeug's multipart parser."""
    from werkzeug.http import parse_options_header

    return parse_options_header(f'form-data; name="images"; filename="{name}"')[1].get("filename", "")


def fuzz_album_api(app, cases: int):
    """Hostile requests to the trip-album API, and the run's own albums: (table, failures, seconds)."""
    import json
    from urllib.parse import quote

    from werkzeug.datastructures import FileStorage

    from webapp.albums import file_label

    client = app.test_client()
    table: collections.Counter = collections.Counter()
    failures: list[str] = []
    albums: list[dict] = []  # the run's live albums: {"id", "token", "photos"}
    gone: list[dict] = []  # those the run deleted
    full_at, app.config["ALBUM_MAX_PHOTOS"] = app.config["ALBUM_MAX_PHOTOS"], ALBUM_FULL_AT
    started = time.monotonic()

    def fail(kind: str, resp, problem: str) -> None:
        failures.append(f"{kind}: {resp.status_code} {problem}: {resp.get_data(as_text=True)[:160]}")

    def check(kind: str, resp, expect: tuple[int, ...] = ()) -> dict:
        """The common rules (no 5xx, a 4xx has a JSON ``error``) and ``expect``ed statuses; the JSON body."""
        table[(kind, resp.status_code)] += 1
        body = resp.get_json(silent=True) or {}
        if resp.status_code >= 500:
            fail(kind, resp, "server error")
        elif resp.status_code >= 400 and not (isinstance(body, dict) and body.get("error")):
            fail(kind, resp, "no JSON error")
        elif expect and resp.status_code not in expect:
            fail(kind, resp, f"expected {'/'.join(map(str, expect))}")
        return body if isinstance(body, dict) else {}

    def post_files(kind: str, url: str, files, headers=None) -> tuple[int, dict]:
        """Post ``files``; check that a 202 accounts for every file the app was sent and that the file names
        come back only in ``errors``, JSON-escaped. The status and the JSON body."""
        parts = [(io.BytesIO(data), name, "text/html") for (_kind, data), name in files]
        resp = client.post(url, data={"images": parts}, headers=headers or {})
        body = check(kind, resp)
        sent = [received_name(name) for _case, name in files]
        sent = [name for name in sent if name]  # a part without a file name is an empty file input: skipped
        labels = [file_label(FileStorage(filename=name), index) for index, name in enumerate(sent)]
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        echoed = [error.get("file") for error in errors if isinstance(error, dict)]
        rest = json.dumps({key: value for key, value in body.items() if key != "errors"})
        text = resp.get_data(as_text=True)
        if resp.status_code == 202 or (400 <= resp.status_code < 500 and sent):  # every file refused: all in errors
            accepted = (body.get("recognitions") or []) if resp.status_code == 202 else []
            if len(accepted) + len(echoed) != len(sent):
                fail(kind, resp, f"{len(sent)} files sent, {len(accepted)} accepted + {len(echoed)} refused")
            elif not is_subsequence(echoed, labels):
                fail(kind, resp, f"errors name {echoed!r}, the files sent were {labels!r}")
        for name in {*sent, *labels}:
            escaped = json.dumps(name)[1:-1]
            if name in rest or (name in text and (escaped != name or name not in echoed)):
                fail(kind, resp, f"file name {name[:40]!r} echoed unescaped or outside errors")
                break
        return resp.status_code, body

    def album_for(index: int) -> dict | None:
        return albums[min(index, len(albums) - 1)] if albums else None

    def token_for(token: str, album: dict) -> str:
        others = [a for a in albums if a is not album]
        return {"real+NUL": album["token"] + "\x00", "real-1": album["token"][:-1], "REAL": album["token"].swapcase(),
                "other album's": others[0]["token"] if others else "x",
                "deleted album's": gone[-1]["token"] if gone else "y"}.get(token, token)

    def id_for(part: str, album: dict | None) -> str:
        real = album["id"] if album else "nothing"
        special = {"real+%00": quote(real) + "%00", "real-1": quote(real[:-1]), "REAL": quote(real.swapcase()),
                   "real/..": quote(real) + "/..", "deleted": quote(gone[-1]["id"]) if gone else "gone"}
        return special.get(part) or (part if part.startswith("%") else quote(part, safe="%")) or "x"

    def multipart(files) -> dict:
        return {"images": [(io.BytesIO(data), name) for (_kind, data), name in files]}

    @settings(max_examples=cases, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.sampled_from(ALBUM_ACTIONS), ALBUM_FILES, TOKENS, ALBUM_IDS, st.integers(0, 7))
    def request(action, files, token, part, index):
        album = album_for(index)
        if action == "create" or album is None:
            status, body = post_files(f"create album ({bucket(len(files))})", "/api/v1/albums", files)
            if status == 202 and body.get("id") and body.get("delete_token"):
                albums.append({"id": body["id"], "token": body["delete_token"], "photos": len(body["recognitions"])})
            return
        url = f"/api/v1/albums/{album['id']}"
        if action == "add":
            status, body = post_files(f"add photos ({bucket(len(files))})", f"{url}/images", files,
                                      {"X-Delete-Token": album["token"]})
            album["photos"] += len(body.get("recognitions") or []) if status == 202 else 0
        elif action == "hostile token":
            wrong = token_for(token, album)
            headers = {"X-Delete-Token": wrong}
            for resp in (client.post(f"{url}/images", headers=headers, data=multipart(files)),
                         client.delete(url, headers=headers)):
                check("hostile X-Delete-Token", resp, expect=(403,))
        elif action == "path":
            bad = f"/api/v1/albums/{id_for(part, album)}"
            headers = {"X-Delete-Token": album["token"]}
            check("hostile album ids in paths", client.get(bad), expect=(200, 400, 404, 405))
            check("hostile album ids in paths", client.post(f"{bad}/images", headers=headers, data=multipart(files)),
                  expect=(202, 400, 404, 405, 409, 413, 415))
            check("hostile album ids in paths", client.delete(bad, headers={"X-Delete-Token": token_for(token, album)}),
                  expect=(400, 403, 404, 405))
        elif action == "get":
            body = check("get album", client.get(url), expect=(200,))
            total = (body.get("counts") or {}).get("total")
            if total != album["photos"]:
                failures.append(f"get album: shows {total} photos, {album['photos']} were accepted")
        else:
            check("delete album", client.delete(url, headers={"X-Delete-Token": album["token"]}), expect=(204,))
            check("get a deleted album", client.get(url), expect=(404,))
            albums.remove(album)
            gone.append(album)

    try:
        request()
    finally:
        app.config["ALBUM_MAX_PHOTOS"] = full_at
    return table, failures, time.monotonic() - started


def bucket(count: int) -> str:
    return "no file" if count == 0 else "1 file" if count == 1 else "2-6 files"


def is_subsequence(items: list, within: list) -> bool:
    rest = iter(within)
    return all(any(item == other for other in rest) for item in items)


def album_report(table, failures, total, elapsed) -> str:
    lines = [
        "",
        "## The album API",
        "",
        "The same app, no account: trip albums (`POST /api/v1/albums`, `POST /api/v1/albums/<id>/images`,",
        "`GET` and `DELETE /api/v1/albums/<id>`) with 0 to 6 files per post, valid images mixed with the hostile",
        "files above, under the hostile file names; hostile album ids in paths (NUL, `..`, 5,000 characters, a real",
        "id altered); hostile `X-Delete-Token` values (empty, NUL, 100,000 characters, any text, the real token",
        "altered, another album's, a deleted album's) on real albums; adding photos to and deleting the albums made",
        f"in the run (`ALBUM_MAX_PHOTOS={ALBUM_FULL_AT}`, so that they fill up: 409). A case fails on a 5xx, on a 4xx",
        "without a JSON `error`, on a hostile token or id answered otherwise than refused, on a 202 whose",
        "`recognitions` and `errors` do not account for every file sent (a part without a file name is an empty",
        "file input, skipped), on a file name echoed anywhere but JSON-escaped in its `errors` entry, or on an",
        "album that does not show the photos it accepted, or is still there once deleted.",
        "",
    ]
    return "\n".join(lines + request_table(table, failures, total, elapsed))


def request_table(table, failures, total, elapsed) -> list[str]:
    """The result line, requests × statuses, and the first failures: the API sections' common part."""
    kinds = sorted({kind for kind, _ in table})
    statuses = sorted({status for _, status in table})
    lines = [f"**Result: {total:,} requests in {elapsed:.0f} s, {len(failures)} failures.**", "",
             "| request | " + " | ".join(str(s) for s in statuses) + " |", "|---|" + "---|" * len(statuses)]
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(str(table.get((kind, s), 0)) for s in statuses) + " |")
    lines.append("")
    if failures:
        lines += ["### Failures", ""] + [f"- {line}" for line in failures[:50]] + [""]
    return lines


def family_of(kind: str) -> str:
    if "claiming" in kind:
        return "absurd dimensions " + kind.split()[0]
    if "script" in kind:
        return "polyglot"
    first = kind.split()[0]
    return first if first in ("mutated", "truncated", "seed", "empty") else kind


def report(table, failures, total, elapsed) -> str:
    statuses = sorted({status for _family, status in table})
    families = sorted({family for family, _status in table})
    lines = [
        "# Upload fuzzing",
        "",
        "`bench/fuzz.py --cases N` sends hostile files through the real upload path (`POST /api/v1/recognitions`,",
        "Flask test client, SQLite and the embedded broker, `MAX_UPLOAD_MB=1`) with hostile file names and a",
        "lying `Content-Type`. Strategies: `tests/hostile.py` (hypothesis). A case fails on any answer other",
        "than 202/400/413/415, on an echoed file name, or when an accepted file would not decode in the worker.",
        "",
        f"**Result: {total:,} cases in {elapsed:.0f} s, {len(failures)} failures** "
        f"(Python {platform.python_version()}, Pillow {_pillow()}, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores; `python {' '.join(sys.argv)}`).",
        "",
        "| input family | " + " | ".join(str(s) for s in statuses) + " |",
        "|---|" + "---|" * len(statuses),
    ]
    for family in families:
        lines.append(f"| {family} | " + " | ".join(str(table.get((family, s), 0)) for s in statuses) + " |")
    lines += ["", "202: accepted and queued (a valid image, possibly with trailing junk, which the re-encoded",
              "copy drops); 400: empty, more than `MAX_IMAGE_PIXELS` (decompression bombs) or `MAX_DECODE_MB`; "
              "413: over",
              "`MAX_UPLOAD_MB`; 415: not an image we accept (other formats, damaged data).", ""]
    if failures:
        lines += ["## Failures", ""] + [f"- {line}" for line in failures[:50]] + [""]
    return "\n".join(lines)


def _pillow() -> str:
    import PIL

    return PIL.__version__


if __name__ == "__main__":
    sys.exit(main())
