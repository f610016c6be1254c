"""The long fuzz run: hostile files through the real upload path (Flask test client, SQLite, embedded broker).

    nice .venv/bin/python bench/fuzz.py --cases 10000 --out docs/fuzz.md

Uses the strategies of ``tests/hostile.py`` (random bytes, mutated / truncated images of every format,
polyglots, absurd dimensions, animations, empty files). Every answer must be 202 (then the stored copy
decodes like the worker will decode it) or a clear 400/413/415; anything else is a failure. Writes a
table of what was sent and what came back.
"""
from __future__ import annotations

import argparse
import collections
import io
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from factories import build_app, make_config  # noqa: E402
from hostile import HOSTILE_NAMES, hostile_files  # noqa: E402
from ml import images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
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
    for line in failures[:20]:
        print("  FAIL", line)
    if args.out:
        args.out.write_text(report(table, failures, total, elapsed), encoding="utf-8")
    return 1 if failures else 0


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
        f"`bench/fuzz.py --cases N` sends hostile files through the real upload path (`POST /api/v1/recognitions`,",
        "Flask test client, SQLite and the embedded broker, `MAX_UPLOAD_MB=1`) with hostile file names and a",
        "lying `Content-Type`. Strategies: `tests/hostile.py` (hypothesis). A case fails on any answer other",
        "than 202/400/413/415, on an echoed file name, or when an accepted file would not decode in the worker.",
        "",
        f"**Result: {total:,} cases in {elapsed:.0f} s, {len(failures)} failures** "
        f"(Python {platform.python_version()}, Pillow {_pillow()}, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}).",
        "",
        "| input family | " + " | ".join(str(s) for s in statuses) + " |",
        "|---|" + "---|" * len(statuses),
    ]
    for family in families:
        lines.append(f"| {family} | " + " | ".join(str(table.get((family, s), 0)) for s in statuses) + " |")
    lines += ["", "202: accepted and queued (a valid image, possibly with trailing junk, which the re-encoded",
              "copy drops); 400: empty or more than `MAX_IMAGE_PIXELS` (decompression bombs); 413: over",
              "`MAX_UPLOAD_MB`; 415: not an image we accept (other formats, damaged data).", ""]
    if failures:
        lines += ["## Failures", ""] + [f"- {line}" for line in failures[:50]] + [""]
    return "\n".join(lines)


def _pillow() -> str:
    import PIL

    return PIL.__version__


if __name__ == "__main__":
    sys.exit(main())
