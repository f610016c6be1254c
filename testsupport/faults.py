"""Faults during a stream of uploads, on the real stack (Redis, PostgreSQL, a Celery worker process).

Used by ``test_faults.py`` (one short round) and ``bench/faults.py`` (several longer rounds). While an
uploader thread keeps posting photos and a "beat" thread runs the sweeper like Celery beat would, the
run SIGKILLs the worker mid-task, restarts Redis without saving (its queued messages are lost) and
stops PostgreSQL for a while. Afterwards every accepted upload must end ``done`` or ``failed`` with a
reason, there must be exactly one row per accepted upload, and the web must have answered only
202 or 503 to uploads and 200/503 to reads — never a 500.
"""
from __future__ import annotations

import collections
import io
import threading
import time
from dataclasses import dataclass, field

from testsupport.live_stack import SharedServers, Stack


@dataclass
class Outcome:
    accepted: list[str] = field(default_factory=list)
    upload_statuses: collections.Counter = field(default_factory=collections.Counter)
    read_statuses_db_down: collections.Counter = field(default_factory=collections.Counter)
    bad_answers: list[str] = field(default_factory=list)
    final: dict[str, dict] = field(default_factory=dict)
    rows: int = 0
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def stuck(self) -> list[str]:
        return [i for i in self.accepted if self.final.get(i, {}).get("status") not in ("done", "failed")]

    @property
    def failed_without_reason(self) -> list[str]:
        return [i for i, body in self.final.items() if body["status"] == "failed" and not body.get("error")]

    def summary(self) -> str:
        statuses = collections.Counter(body["status"] for body in self.final.values())
        return (f"{len(self.accepted)} accepted, uploads answered {dict(self.upload_statuses)}, "
                f"reads while the database was down {dict(self.read_statuses_db_down)}, final {dict(statuses)}, "
                f"{self.rows} rows, {len(self.stuck)} stuck, {len(self.bad_answers)} bad answers, "
                f"{self.seconds:.0f}s")


class FaultRun:
    def __init__(self, stack: Stack, photos: list[bytes], upload_every: float = 0.25, sweep_every: float = 1.0,
                 servers=SharedServers):
        self.stack, self.photos = stack, photos
        self.servers = servers  # live_stack.SharedServers (the machine's) or PrivateServers
        self.upload_every, self.sweep_every = upload_every, sweep_every
        self.outcome = Outcome()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    # --- background load: uploads and beat ---------------------------------------------------------
    def _uploader(self) -> None:
        client = self.stack.app.test_client()
        n = 0
        while not self.stopping.is_set():
            data = self.photos[n % len(self.photos)]
            n += 1
            try:
                resp = client.post("/api/v1/recognitions", data={"image": (io.BytesIO(data), "p.jpg")})
            except Exception as exc:  # what a real server would turn into a 500 or a dropped connection
                with self.lock:
                    self.outcome.bad_answers.append(f"upload raised {type(exc).__name__}: {exc}")
                time.sleep(self.upload_every)
                continue
            with self.lock:
                self.outcome.upload_statuses[resp.status_code] += 1
                if resp.status_code == 202:
                    self.outcome.accepted.append(resp.get_json()["id"])
                elif resp.status_code != 503 or not (resp.get_json() or {}).get("error"):
                    self.outcome.bad_answers.append(f"upload: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
            time.sleep(self.upload_every)

    def _beat(self) -> None:
        from webapp import maintenance

        while not self.stopping.wait(self.sweep_every):
            with self.stack.app.app_context():
                try:
                    maintenance.sweep()
                except Exception as exc:  # database or broker down: beat would simply try again later
                    self.note(f"sweep skipped: {type(exc).__name__}")

    def note(self, event: str) -> None:
        with self.lock:
            self.outcome.events.append(f"{time.monotonic() - self.started:6.1f}s {event}")

    # --- faults ---------------------------------------------------------------------------------------
    def kill_worker_mid_task(self, timeout: float = 30) -> None:
        """SIGKILL the worker as soon as a recognition is running, then start a new one."""
        deadline = time.monotonic() + timeout
        with self.stack.app.app_context():
            from webapp.extensions import db
            from webapp.models import Recognition

            while time.monotonic() < deadline:
                running = db.session.scalar(db.select(db.func.count()).where(Recognition.status == "running"))
                db.session.rollback()
                if running:
                    break
                time.sleep(0.01)
        self.stack.kill_worker()
        self.note(f"worker SIGKILLed ({running} running)")
        time.sleep(1)
        self.stack.restart_worker()
        self.note("worker restarted")

    def restart_redis(self) -> None:
        self.servers.restart_redis()
        self.note("Redis restarted (queued messages lost)")

    def postgres_outage(self, seconds: float) -> None:
        self.servers.stop_postgres()
        self.note("PostgreSQL stopped")
        client = self.stack.app.test_client()
        some_id = self.outcome.accepted[0] if self.outcome.accepted else "unknown"
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                for url in (f"/api/v1/recognitions/{some_id}", f"/r/{some_id}"):
                    try:
                        resp = client.get(url)
                    except Exception as exc:
                        with self.lock:
                            self.outcome.bad_answers.append(f"read {url} raised {type(exc).__name__}: {exc}")
                        continue
                    with self.lock:
                        self.outcome.read_statuses_db_down[resp.status_code] += 1
                        if resp.status_code != 503:
                            self.outcome.bad_answers.append(f"read {url} with the database down: {resp.status_code}")
                time.sleep(0.2)
        finally:
            self.servers.start_postgres()
            self.note("PostgreSQL started")

    # --- the run ----------------------------------------------------------------------------------------
    def run(self, rounds: int = 1, pause: float = 3.0, outage: float = 3.0, drain_timeout: float = 180) -> Outcome:
        self.started = time.monotonic()
        threads = [threading.Thread(target=target, daemon=True) for target in (self._uploader, self._beat)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(rounds):
                time.sleep(pause)
                self.kill_worker_mid_task()
                time.sleep(pause)
                self.restart_redis()
                time.sleep(pause)
                self.postgres_outage(outage)
                time.sleep(pause)
        finally:
            self.stopping.set()
            for thread in threads:
                thread.join(timeout=60)
        self._drain(drain_timeout)
        self.outcome.seconds = time.monotonic() - self.started
        return self.outcome

    def _drain(self, timeout: float) -> None:
        """Keep sweeping (as beat does) until every accepted upload has finished, or time runs out."""
        from webapp import maintenance
        from webapp.extensions import db
        from webapp.models import Recognition

        deadline = time.monotonic() + timeout
        with self.stack.app.app_context():
            while True:
                db.session.expire_all()
                rows = db.session.scalars(db.select(Recognition)).all()
                self.outcome.final = {r.id: {"status": r.status, "error": r.error} for r in rows}
                self.outcome.rows = len(rows)
                if not self.outcome.stuck or time.monotonic() > deadline:
                    return
                maintenance.sweep()
                time.sleep(self.sweep_every)


def answers_with_rate_limit_storage_down(client, rec_id: str, email: str, password: str) -> dict[str, int]:
    """Status codes of an upload, an API read, a result page and a sign-in while the limiter's Redis is down."""
    from testsupport.factories import jpeg_bytes

    return {
        "upload": client.post("/api/v1/recognitions", data={"image": (io.BytesIO(jpeg_bytes()), "p.jpg")}).status_code,
        "api read": client.get(f"/api/v1/recognitions/{rec_id}").status_code,
        "landmarks": client.get("/api/v1/landmarks").status_code,
        "sign-in": client.post("/login", data={"email": email, "password": password}).status_code,
    }
