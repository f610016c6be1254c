# Two commands: `make run` (web + worker on http://127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(PY) -m flask --app wsgi
PORT   ?= 5000
CATALOG ?= webapp/data/landmarks.json

CHROMIUM ?= /usr/bin/chromium

.PHONY: install run migrate catalog chromium nginx test test-fast lint translations

$(VENV)/.installed: requirements.txt $(wildcard requirements/*.txt)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(FLASK) db upgrade

catalog: migrate
	$(FLASK) landmarks import $(CATALOG)

# plain http on 127.0.0.1: session cookies cannot be Secure here (production serves https)
run: catalog
	PORT=$(PORT) SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-0} exec $(PY) -m worker.run_local

# the browser tests drive Debian's Chromium: installed here when missing and possible, else a clear stop
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "make test needs Chromium at $(CHROMIUM): run  sudo apt-get install chromium" >&2; exit 1; fi; }

# the reverse-proxy tests drive Debian's nginx binary: without one installed, the package is unpacked into
# the venv (no root, no service started), else a clear stop
LOCAL_NGINX := $(VENV)/nginx/usr/sbin
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || test -x $(LOCAL_NGINX)/nginx || { \
	  rm -rf $(VENV)/nginx && mkdir -p $(VENV)/nginx && cd $(VENV)/nginx && \
	  { apt-get download -qq nginx 2>/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get download -qq nginx; }; } && \
	  dpkg-deb -x nginx_*.deb . && rm nginx_*.deb; } || \
	  { echo "make test needs nginx: run  sudo apt-get install nginx-light" >&2; exit 1; }

test: install chromium nginx
	PATH="$(CURDIR)/$(LOCAL_NGINX):$$PATH" $(PY) -m pytest tests --timeout 900

# ruff (Flask's rule selection) and mypy (check_untyped_defs), both configured in pyproject.toml
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# everything except the slow end-to-end and browser tests
test-fast: install
	$(PY) -m pytest tests --timeout 900 --ignore=tests/integration

translations: install
	$(VENV)/bin/pybabel extract -F webapp/babel.cfg -k _l -o webapp/translations/messages.pot .
	$(VENV)/bin/pybabel update --ignore-obsolete -i webapp/translations/messages.pot -d webapp/translations
	$(VENV)/bin/pybabel compile -d webapp/translations
