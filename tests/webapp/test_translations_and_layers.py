"""Every UI string has a Vietnamese translation, and the web process stays free of ML runtimes."""
import subprocess
import sys

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from testsupport.factories import ROOT

TRANSLATIONS = ROOT / "webapp" / "translations" / "vi" / "LC_MESSAGES"


def test_every_ui_string_is_translated_and_compiled():
    with open(TRANSLATIONS / "messages.po", "rb") as fh:
        po = read_po(fh)
    with open(TRANSLATIONS / "messages.mo", "rb") as fh:
        mo = read_mo(fh)
    method_map = [("webapp/**.py", "python"), ("webapp/templates/**.html", "jinja2")]
    keywords = {**DEFAULT_KEYWORDS, "_l": None}  # lazy_gettext, for form labels (as `make translations`)
    in_code = {singular(msg[2]) for msg in extract_from_dir(str(ROOT), method_map, keywords=keywords)}
    in_po = {singular(m.id): singular(m.string) for m in po if m.id}
    in_mo = {singular(m.id): singular(m.string) for m in mo if m.id}
    assert in_code - set(in_po) == set(), "run `make translations` and translate the new strings"
    assert [msgid for msgid, text in in_po.items() if not text] == []
    assert in_mo == in_po, "messages.mo is stale: run `make translations`"


def singular(text):
    return text if isinstance(text, str) else text[0]


def test_the_web_process_never_imports_an_ml_runtime():
    code = (
        "import sys, wsgi\n"
        "c = wsgi.app.test_client(); c.get('/'); c.get('/landmarks')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'ai_edge_litert')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "INSTANCE_DIR": "/tmp/landmarks-layer-test"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
