"""A real stack: the web app in the test process, a Celery worker in a subprocess, shared storage."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from config import Config, database_url
from testsupport.factories import CATALOG_FILE, ROOT, build_app, make_config


class Stack:
    def __init__(self, tmp: Path, db_url: str | None = None, broker_url: str | None = None, **overrides):
        self.tmp = tmp
        self.db_url = database_url(db_url) if db_url else f"sqlite:///{tmp / 'app.sqlite'}"
        self.broker_url = broker_url or f"sqla+sqlite:///{tmp / 'broker.sqlite'}"
        self.config = make_config(
            tmp, SQLALCHEMY_DATABASE_URI=self.db_url, CELERY=dict(Config().CELERY, broker_url=self.broker_url),
            **overrides,
        )
        self.worker: subprocess.Popen | None = None  # the latest started; all of them in self.workers
        self.workers: list[subprocess.Popen] = []
        self.log = tmp / "worker.log"

    def prepare(self) -> None:
        """Fresh schema (migrations), the real catalog, an empty queue."""
        from flask_migrate import upgrade

        from webapp import create_app
        from webapp.cli import upsert_landmarks
        from webapp.extensions import db

        if not self.db_url.startswith("sqlite"):
            app = create_app(self.config)
            with app.app_context():
                db.drop_all()
                with db.engine.begin() as conn:
                    conn.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
                upgrade()
        self.app = build_app(self.config)
        with self.app.app_context():
            upsert_landmarks(json.loads(CATALOG_FILE.read_text(encoding="utf-8")))
        with self.app.extensions["celery"].connection_for_write() as conn:
            for queue in ("inference", "inference-album"):
                conn.default_channel.queue_declare(queue)
                conn.default_channel.queue_purge(queue)
        self.client = self.app.test_client()

    def start_worker(self, concurrency: int = 1, pool: str = "prefork", queues: str = "inference,inference-album",
                     **env_extra: str) -> None:
        self.worker_args = (concurrency, pool, queues, env_extra)  # restart_worker starts the same again
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": self.broker_url,
            "UPLOAD_DIR": self.config["UPLOAD_DIR"],
            "REFERENCE_DIR": self.config["REFERENCE_DIR"],
            "MODEL_DIR": self.config["MODEL_DIR"],
            "INSTANCE_DIR": str(self.tmp),
            "SECRET_KEY": "test",
        }
        for passed in ("MODEL_BUNDLE", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
            if os.environ.get(passed):
                env[passed] = os.environ[passed]
        env.update(env_extra)
        cmd = [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", queues, "--pool", pool,
               "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
               "--without-heartbeat", "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h"]
        self.worker = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                       start_new_session=True)  # its own process group: kill_worker gets all
        self.workers.append(self.worker)

    def restart_worker(self) -> None:
        concurrency, pool, queues, env_extra = self.worker_args
        self.start_worker(concurrency, pool, queues, **env_extra)

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool processes, as the kernel's OOM killer or a crash would."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    def upload(self, data: bytes) -> str:
        resp = self.client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), "photo.jpg")})
        assert resp.status_code == 202, resp.get_data(as_text=True)
        return resp.get_json()["id"]

    def wait_finished(self, rec_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.client.get(f"/api/v1/recognitions/{rec_id}").get_json()
            if body["status"] in ("done", "failed"):
                return body
            assert self.worker.poll() is None, f"worker died:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.2)
        pytest.fail(f"recognition {rec_id} not finished after {timeout}s:\n{self.log.read_text()[-3000:]}")


# --- faults on the local servers (CI's PostgreSQL and Redis on 127.0.0.1) ------------------------------

def postgres_cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def stop_postgres() -> None:
    subprocess.run(postgres_cluster() + ["stop", "-m", "fast"], check=True, capture_output=True)


def start_postgres() -> None:
    subprocess.run(postgres_cluster() + ["start"], check=True, capture_output=True)
    wait_until(lambda: subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0, "PostgreSQL")


def restart_redis() -> None:
    """Shut Redis down without saving (its queued messages are lost) and start it again, empty."""
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], capture_output=True)
    start_redis()


def start_redis() -> None:
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
                    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
                    "--logfile", "/var/log/redis/ci.log"], check=True, capture_output=True)
    wait_until(lambda: subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True).returncode == 0,
               "Redis")


def servers_controllable() -> str | None:
    """Why this machine's PostgreSQL/Redis cannot be stopped and started here, or None."""
    import shutil

    if os.geteuid() != 0:
        return "restarting PostgreSQL and Redis needs root"
    missing = [tool for tool in ("pg_ctlcluster", "pg_isready", "redis-server", "redis-cli") if not shutil.which(tool)]
    if missing or not os.path.isdir("/etc/postgresql"):
        return f"missing {', '.join(missing) or '/etc/postgresql'}"
    return None


def wait_until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come back within {timeout}s")


class PrivateRedis:
    """A Redis server of the test's own on a free port (never the machine's shared one), stopped at will."""

    def __init__(self, tmp: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tmp = tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                          capture_output=True).returncode == 0, "the private Redis", timeout=20)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class PrivatePostgres:
    """A PostgreSQL cluster of the run's own (initdb as the postgres user, a free port, trust auth), so
    outages can be staged without stopping the machine's shared server. Needs root."""

    def __init__(self):
        import socket
        import tempfile

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.home = Path(tempfile.mkdtemp(prefix="private-postgres-"))  # its own: the postgres user must enter it
        os.chown(self.home, *_postgres_ids())
        self.data = self.home / "data"
        self.bin = Path(postgres_binaries())
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}")

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "log"),
                          "-o", f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")


def postgres_binaries() -> str:
    return str(Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin")


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


class SharedServers:
    """The machine's own PostgreSQL and Redis (CI), stopped and started for fault runs."""

    stop_postgres = staticmethod(stop_postgres)
    start_postgres = staticmethod(start_postgres)
    restart_redis = staticmethod(restart_redis)


class PrivateServers:
    """A private PostgreSQL and Redis: fault runs on a machine whose servers others use."""

    def __init__(self, tmp: Path):
        self.postgres = PrivatePostgres().start()
        self.redis = PrivateRedis(tmp).start()
        self.database_url, self.broker_url = self.postgres.url, self.redis.url

    def stop_postgres(self) -> None:
        self.postgres.stop()

    def start_postgres(self) -> None:
        self.postgres.start()

    def restart_redis(self) -> None:
        self.redis.stop()  # SIGKILL: nothing saved, queued messages lost
        self.redis.start()

    def close(self) -> None:
        import shutil

        self.redis.stop()
        self.postgres.stop()
        shutil.rmtree(self.postgres.home, ignore_errors=True)
