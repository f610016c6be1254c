"""nginx from deploy/nginx.conf.template in front of a live gunicorn: slow clients cannot take the site down,
and /metrics and /readyz are not reachable through it. ``make test`` brings nginx; run alone, these tests skip
where there is none, and fail under CI (the static checks of the compose file are in test_compose.py)."""
from __future__ import annotations

import os
import shutil
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from testsupport.factories import ROOT, skip_or_fail_under_ci

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
SLOW_CLIENTS = 6  # more than gunicorn's threads below


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    if NGINX is None:
        skip_or_fail_under_ci("nginx", "nginx is not installed (make test unpacks it; or apt-get install nginx-light)")
    tmp = tmp_path_factory.mktemp("nginx")
    web_port, nginx_port = free_port(), free_port()
    env = dict(os.environ, INSTANCE_DIR=str(tmp), SECRET_KEY="nginx-test-key",
               DATABASE_URL=f"sqlite:///{tmp}/app.sqlite", CELERY_BROKER_URL=f"sqla+sqlite:///{tmp}/broker.sqlite",
               TRUSTED_PROXIES="1")
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{web_port}", "--workers", "1", "--threads", "2",
         "wsgi:app"], cwd=ROOT, env=env, stdout=(tmp / "gunicorn.log").open("wb"), stderr=subprocess.STDOUT)
    template = string.Template((ROOT / "deploy" / "nginx.conf.template").read_text())
    site = template.safe_substitute(NGINX_MAX_BODY="21m", WEB_UPSTREAM=f"127.0.0.1:{web_port}")
    assert "listen 8080;" in site
    (tmp / "site.conf").write_text(site.replace("listen 8080;", f"listen 127.0.0.1:{nginx_port};"))
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "".join(f"{kind}_temp_path {tmp}/{kind};\n" for kind in kinds)
    (tmp / "nginx.conf").write_text(
        f"worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\ndaemon off;\n"
        f"events {{ worker_connections 512; }}\n"
        f"http {{\naccess_log off;\n{temp_paths}include {tmp}/site.conf;\n}}\n")
    check = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_port(web_port)
        wait_port(nginx_port)
        yield {"web": web_port, "nginx": nginx_port}
    finally:
        for process in (nginx, gunicorn):
            process.terminate()
            process.wait(timeout=15)


def get(port: int, path: str, timeout: float = 3.0) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def slow_clients(port: int) -> list[socket.socket]:
    """Connections that send a request head one line at a time and never finish it."""
    socks = []
    for i in range(SLOW_CLIENTS):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if i % 2 else
                  b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nxx")
        socks.append(s)
    return socks


def answers_while_held(port: int) -> bool:
    socks = slow_clients(port)
    try:
        time.sleep(0.5)
        return get(port, "/healthz", timeout=3) == 200
    except OSError:  # timed out: every thread waits for a slow client
        return False
    finally:
        for s in socks:
            s.close()


def test_slow_clients_hold_gunicorn_but_not_the_site_behind_nginx(servers):
    assert not answers_while_held(servers["web"])  # the attack works on gunicorn alone...
    time.sleep(1)
    assert answers_while_held(servers["nginx"])  # ...and not through nginx, which buffers whole requests


def test_operations_endpoints_are_internal_only(servers):
    assert get(servers["nginx"], "/metrics") == 404
    assert get(servers["nginx"], "/readyz") == 404
    for path in ("/metrics", "/readyz"):  # the internal network still reaches them (503 here: no schema)
        assert get(servers["web"], path) != 404
    assert get(servers["nginx"], "/healthz") == 200


def test_nginx_refuses_a_body_over_its_limit_before_gunicorn_reads_it(servers):
    s = socket.create_connection(("127.0.0.1", servers["nginx"]), timeout=5)
    s.sendall(b"POST /api/v1/recognitions HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n")
    assert s.recv(200).startswith(b"HTTP/1.1 413")
    s.close()
