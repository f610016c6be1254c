"""kombu's Redis transport with fewer round trips per message, for the workers (``broker_transport``).

Per message, kombu's Redis channel makes three round trips, each through a new client object: a BRPOP,
a pipeline that files the message as unacknowledged (so a killed worker's messages come back after the
visibility timeout), and one that removes it at the acknowledgement. Here, with the same guarantees:

- one client object per channel;
- after a BRPOP, as many more messages of that queue as the prefetch limit allows come with one
  ``RPOP key count``, and all are filed as unacknowledged in one pipeline before any task starts;
- the acknowledgements made in one round of the event loop go in one pipeline.

A message still leaves the unacknowledged index only once its task has finished (``acks_late``).
"""
from __future__ import annotations

import logging

from kombu.asynchronous import get_event_loop
from kombu.transport import redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)


class QoS(redis.QoS):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._filed: set[str] = set()  # delivery tags already filed as unacknowledged (``Channel._take_more``)
        self._acks: list[str] = []

    def append(self, message, delivery_tag):
        if delivery_tag in self._filed:
            self._filed.discard(delivery_tag)
            redis.virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def file_unacked(self, payloads: list[dict]) -> None:
        """File messages as unacknowledged, in one pipeline, before they are delivered."""
        now = redis.time()
        with self.pipe_or_acquire() as pipe:
            for payload in payloads:
                tag, info = payload["properties"]["delivery_tag"], payload["properties"]["delivery_info"]
                pipe.zadd(self.unacked_index_key, {tag: now})
                pipe.hset(self.unacked_key, tag, dumps([payload, info["exchange"], info["routing_key"]]))
            pipe.execute()
        self._filed.update(p["properties"]["delivery_tag"] for p in payloads)

    def ack(self, delivery_tag):
        self._acks.append(delivery_tag)
        loop = get_event_loop()
        if loop is None:
            self.flush_acks()
        elif len(self._acks) == 1:  # the first of this round: the others made meanwhile go with it
            loop.call_soon(self.flush_acks)

    def flush_acks(self) -> None:
        tags, self._acks = self._acks, []
        if not tags:
            return
        try:
            with self.pipe_or_acquire() as pipe:
                pipe.zrem(self.unacked_index_key, *tags).hdel(self.unacked_key, *tags).execute()
        except self.channel.connection.connection_errors:  # as kombu's own acknowledgement: logged, not raised
            log.warning("could not acknowledge %d messages: they come back after the visibility timeout, "
                        "and their finished recognitions are left alone", len(tags), exc_info=True)
        for tag in tags:
            redis.virtual.QoS.ack(self, tag)

    def restore_unacked(self, client=None):
        self.flush_acks()  # finished tasks are not restored at shutdown
        self._flush()
        return super().restore_unacked(client)


class Channel(redis.Channel):
    QoS = QoS
    _sync_client = None

    def conn_or_acquire(self, client=None):
        if client is None:
            if self._sync_client is None:
                self._sync_client = self._create_client()
            client = self._sync_client
        return super().conn_or_acquire(client)

    def _brpop_read(self, **options):
        delivered = super()._brpop_read(**options)
        self._take_more(self._queue_cycle.items[-1])  # the queue just read is rotated to the end
        return delivered

    def _take_more(self, queue: str) -> None:
        room = self.qos.can_consume_max_estimate()
        if not room or queue not in self._active_queues:
            return
        with self.conn_or_acquire() as client:
            items = client.rpop(self._q_for_pri(queue, 0), room)
        if not items:
            return
        payloads = [loads(bytes_to_str(item)) for item in items]
        self.qos.file_unacked(payloads)
        for payload in payloads:
            self.connection._deliver(payload, queue)

    def close(self):
        if self._qos is not None:
            self._qos.flush_acks()
        super().close()


class Transport(redis.Transport):
    Channel = Channel
