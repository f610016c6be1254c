"""The long fuzz run: hostile files through the real upload path (Flask test client, SQLite, embedded broker).

    nice .venv/bin/python bench/fuzz.py --cases 10000 --api-cases 3000 --out docs/fuzz.md

Uses the strategies of ``tests/hostile.py`` (random bytes, mutated / truncated images of every format,
polyglots, absurd dimensions, animations, empty files). Every answer must be 202 (then the stored copy
decodes like the worker will decode it) or a clear 400/413/415; anything else is a failure. Then the
editors' API with an editor's bearer token (``--api-cases``): hostile JSON (any JSON value, deep nesting, NUL
bytes, huge numbers, long strings) for creating and editing landmarks, hostile slugs and ids in paths, and
hostile files as reference photos; every answer must be a 2xx or a clear 4xx with a JSON error, never a 5xx.
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ml import images  # noqa: E402

from factories import build_app, make_config  # noqa: E402
from hostile import HOSTILE_NAMES, hostile_files  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--api-cases", type=int, default=3_000, help="cases for the editors' API")
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
    for line in (failures + api_failures)[:20]:
        print("  FAIL", line)
    if args.out:
        text = report(table, failures, total, elapsed) + api_report(api_table, api_failures, api_total, api_elapsed)
        args.out.write_text(text, encoding="utf-8")
    return 1 if failures or api_failures else 0


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

    from webapp.cli import upsert_landmarks

    from auth_helpers import api_headers, make_user
    from factories import SAMPLE_CATALOG

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
    statuses = sorted({status for _kind, status in table})
    kinds = sorted({kind for kind, _status in table})
    lines = [
        "",
        "## The editors' API",
        "",
        "The same app, with an editor's bearer token: hostile JSON bodies (any JSON value, deep nesting up to",
        "200,000 levels, NUL bytes, integers of 400 digits, NaN/Infinity, long strings) for creating and editing",
        "landmarks, hostile slugs and ids in paths (NUL, `..`, 30-digit ids), and the hostile files above as",
        "reference photos. A case fails on a 5xx or on a 4xx without a JSON `error`.",
        "",
        f"**Result: {total:,} requests in {elapsed:.0f} s, {len(failures)} failures.**",
        "",
        "| request | " + " | ".join(str(s) for s in statuses) + " |",
        "|---|" + "---|" * len(statuses),
    ]
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(str(table.get((kind, s), 0)) for s in statuses) + " |")
    lines.append("")
    if failures:
        lines += ["### Failures", ""] + [f"- {line}" for line in failures[:50]] + [""]
    return "\n".join(lines)


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
