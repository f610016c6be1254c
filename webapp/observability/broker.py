"""The broker: is it reachable, and how many messages wait in each queue."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import column, create_engine, inspect, table
from sqlalchemy.pool import NullPool

from webapp.extensions import db

BROKER_TIMEOUT_S = 2.0  # a probe or a scrape never waits longer than this on the broker


def queue_names() -> list[str]:
    """The queues the routes in CELERY name, the default queue first."""
    celery = current_app.config["CELERY"]
    names = [celery.get("task_default_queue", "celery")]
    names += [route["queue"] for route in celery.get("task_routes", {}).values() if "queue" in route]
    return list(dict.fromkeys(names))


def broker_url() -> str:
    return current_app.extensions["celery"].conf.broker_url


def is_redis(url: str) -> bool:
    return urlsplit(url).scheme in ("redis", "rediss")


def check_broker() -> None:
    """Connect to the broker once, within BROKER_TIMEOUT_S; raises if it cannot."""
    celery = current_app.extensions["celery"]
    # kombu hands transport options of the SQLAlchemy transport to create_engine: Redis's only
    options = {"socket_connect_timeout": BROKER_TIMEOUT_S, "socket_timeout": BROKER_TIMEOUT_S}
    with celery.connection_for_read(connect_timeout=BROKER_TIMEOUT_S,
                                    transport_options=options if is_redis(broker_url()) else None) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S)


def queue_depths() -> dict[str, int] | None:
    """Messages waiting per queue; None for a broker we cannot count (raises if the broker is down).

    Redis: ``LLEN`` of the queue's list (the app sends no priorities, so one list per queue).
    kombu's SQLAlchemy transport: its visible (not yet delivered) rows of ``kombu_message``.
    """
    url, names = broker_url(), queue_names()
    if is_redis(url):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S)
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.llen(name)
                return dict(zip(names, pipe.execute(), strict=False))
        finally:
            client.close()
    if url.startswith("sqla+"):
        return _sqla_queue_depths(url.removeprefix("sqla+"), names)
    return None


_broker_engines: dict = {}


def _sqla_queue_depths(url: str, names: list[str]) -> dict[str, int]:
    options = current_app.extensions["celery"].conf.broker_transport_options or {}
    queues = table(options.get("queue_tablename", "kombu_queue"), column("id"), column("name"))
    messages = table(options.get("message_tablename", "kombu_message"), column("id"), column("queue_id"),
                     column("visible"))
    if url not in _broker_engines:  # NullPool: nothing shared across forks, SQLite opens cheaply
        connect_args = {"timeout": BROKER_TIMEOUT_S} if url.startswith("sqlite") else {}
        _broker_engines[url] = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    depths = {name: 0 for name in names}
    with _broker_engines[url].connect() as conn:
        if not inspect(conn).has_table(messages.name):  # nothing was ever sent
            return depths
        rows = conn.execute(db.select(queues.c.name, db.func.count(messages.c.id))
                            .join(messages, messages.c.queue_id == queues.c.id)
                            .where(queues.c.name.in_(names), messages.c.visible.is_(True))
                            .group_by(queues.c.name))
        depths.update(rows.all())
    return depths
